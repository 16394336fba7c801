"""Training with the PP-OCRv5 / PP-OCRv6 recognizer configs (configs/v5_*.py, v6_*.py), as a
user runs them (`python -m textrec.main`), on the smallest shapes they allow.

Each config overfits one batch (2 synthetic words, the whole training split, no augmentation,
one scale at 48x64, labels of 2-5 characters) for STEPS steps: every loss finite and the mean
of the last two below the first, on the same batch. Then the run is resumed from its step-K
checkpoint (what a run killed after step K leaves; tests/test_resume.py kills one for real)
and must end with every leaf of the training state bitwise equal to the uninterrupted run's.
The train step's compile of these networks (NRTR branch included) is long on a small CPU; both
runs share it through a JAX compile cache, and all but v6_tiny are `slow`.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

STEPS, K, BATCH = 4, 2, 2
# Only v6_tiny runs by default: the others' train-step compiles are several times slower.
CONFIGS = [pytest.param(c, marks=pytest.mark.slow)
           for c in ("v5_mobile", "v5_server", "v6_small", "v6_medium")] + ["v6_tiny"]


def _cmd(config: str, data: str, out: str, *extra: str) -> list[str]:
  return train_utils.main_cmd(
      f"--config.dataset_dir={data}", f"--config.output_dir={out}",
      f"--config.train.steps={STEPS}", f"--config.train.batch_size={BATCH}",
      f"--config.train.save_every={K}", "--config.train.keep_last=10",
      "--config.train.log_every=1", "--config.train.eval_every=1000",
      "--config.data.width=64", "--config.data.max_text_length=8",
      "--config.data.multi_scale=False", "--config.data.augment=False",
      "--config.data.num_workers=0", "--config.optim.warmup_epochs=0.0",
      "--config.evaluate.batch_size=1", *extra, config=f"configs/{config}.py")


def _losses(out: str) -> list[float]:
  with open(os.path.join(out, "history.jsonl"), encoding="utf-8") as f:
    return [h["loss"] for h in map(json.loads, f) if "loss" in h]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_overfits_one_batch_and_resumes(tmp_path, config):
  data = train_utils.make_dataset(tmp_path / "data", n_train=BATCH, n_val=1)
  env = dict(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  full = str(tmp_path / "full")
  r = train_utils.run(_cmd(config, data, full), timeout=1800, **env)
  assert r.returncode == 0, r.stderr[-3000:]
  losses = _losses(full)
  print(f"{config}: losses {[round(v, 3) for v in losses]}")
  assert len(losses) == STEPS and all(math.isfinite(v) for v in losses), losses
  assert sum(losses[-2:]) / 2 < 0.97 * losses[0], losses
  with open(os.path.join(full, "train_result.json"), encoding="utf-8") as f:
    res = json.load(f)
  assert res["done_flag"] and res["nonfinite_steps"] == 0
  assert res["model_name"].startswith(f"PP-OCR{config.split('_')[0]}_")

  cut = str(tmp_path / "cut")  # the run as killed after step K: checkpoints up to K, no eval
  shutil.copytree(full, cut)
  shutil.rmtree(os.path.join(cut, "best_model"))
  os.remove(os.path.join(cut, "train_result.json"))
  for step in os.listdir(os.path.join(cut, "checkpoints")):
    if step.isdigit() and int(step) > K:
      shutil.rmtree(os.path.join(cut, "checkpoints", step))
  r = train_utils.run(_cmd(config, data, cut, "--config.train.resume=True"), timeout=1800,
                      **env)
  assert r.returncode == 0, r.stderr[-3000:]
  with open(os.path.join(cut, "train.log"), encoding="utf-8") as f:
    assert f"resumed from step {K}" in f.read()
  a = train_utils.final_state(full, STEPS)
  n = train_utils.assert_same_state(a, train_utils.final_state(cut, STEPS))
  print(f"{config}: resumed from step {K}, {n} state leaves equal")
