"""LR schedules against PaddleOCR: its documented formulas, and the lr its trainer used per
step (../shared/fixtures/paddle_train)."""
from __future__ import annotations

import json
import math

import ml_collections as mlc
import numpy as np
import pytest

from textrec.errors import UsageError
from textrec.training import optim


def _cfg(schedule: str = "cosine", lr: float = 1e-3, warmup_epochs: float = 0.0):
  return mlc.ConfigDict(dict(lr=lr, schedule=schedule, warmup_epochs=warmup_epochs))


def _paddle_cosine(s: int, lr: float, epochs: int, spe: int, warmup_epochs: float) -> float:
  """PaddleOCR's `Cosine(learning_rate, warmup_epoch)`: `LinearWarmup(start_lr=0,
  end_lr=lr, warmup_steps=round(warmup_epoch * spe))` around
  `CosineAnnealingDecay(lr, T_max=epochs * spe)`, stepped once per iteration."""
  w, t_max = round(warmup_epochs * spe), epochs * spe
  if s < w:
    return lr * s / w
  return lr * 0.5 * (1 + math.cos(math.pi * (s - w) / t_max))


@pytest.mark.parametrize("epochs,spe,warmup_epochs",
                         [(10, 2, 5), (20, 7, 2.5), (4, 25, 0), (1, 32, 5)])  # last: all warmup
def test_cosine_matches_paddle_formula(epochs, spe, warmup_epochs):
  lr, total = 1e-3, epochs * spe
  schedule = optim.make_schedule(_cfg("cosine", lr, warmup_epochs), total, spe)
  for s in sorted({0, 1, 2, spe, total // 2, total - 2, total - 1}):
    want = _paddle_cosine(s, lr, epochs, spe, warmup_epochs)
    # float32 against Paddle's float64: within a few ulp of lr (1 + cos near pi cancels).
    assert float(schedule(s)) == pytest.approx(want, rel=1e-6, abs=1e-6 * lr), s
  if warmup_epochs:
    assert float(schedule(0)) == 0.0  # the first step runs with lr 0, as Paddle's
  assert float(schedule(total - 1)) > 0.0  # T_max spans the whole run: no 0 at the end


def test_constant_warms_up_then_holds():
  schedule = optim.make_schedule(_cfg("constant", 2e-3, 1.0), 40, 8)
  got = [float(schedule(s)) for s in (0, 4, 7, 8, 39)]
  np.testing.assert_allclose(got, [0.0, 1e-3, 1.75e-3, 2e-3, 2e-3], rtol=1e-6)
  flat = optim.make_schedule(_cfg("constant", 2e-3, 0.0), 40, 8)
  assert float(flat(0)) == pytest.approx(2e-3)
  with pytest.raises(UsageError, match="config.optim.schedule"):
    optim.make_schedule(_cfg("step"), 40, 8)


@pytest.mark.parametrize("model", ["PP-OCRv4_mobile_rec", "PP-OCRv4_server_rec"])
def test_schedule_reproduces_paddle_trainer_lr(paddle_train_dir, model):
  """The lr PaddleOCR's trainer (`optimizer.get_lr()`) used at iterations 1..25."""
  path = paddle_train_dir / f"{model}.json"
  rec = json.loads(path.read_text())["lr_scheduler"]
  assert rec["class"] == "LinearWarmup" and rec["inner"] == "CosineAnnealingDecay"
  spe = rec["step_each_epoch"]
  cfg = _cfg("cosine", rec["base_lr"], rec["warmup_epoch"])
  schedule = optim.make_schedule(cfg, rec["epochs"] * spe, spe)
  want = rec["lr_used_at_step_1_to_25"]
  got = [float(schedule(s)) for s in range(len(want))]
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * rec["base_lr"])
