"""Training: the tiny config learns on a small synthetic set; outputs, checkpoints, evaluate
mode and the non-finite guard."""
from __future__ import annotations

import json
import os
import sys

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from textrec.formats import checkpoint
from textrec.training import optim, periodic, train
from textrec.training import train_state as ts

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

sys.path.insert(0, str(train_utils.REPO / "configs"))
import tiny  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """One 40-step training run of configs/tiny.py (from scratch) on a synthetic set."""
  root = tmp_path_factory.mktemp("tiny_run")
  data = train_utils.make_dataset(root / "data", n_train=64, n_val=16)
  cfg = tiny.get_config()
  with cfg.unlocked():
    cfg.dataset_dir, cfg.output_dir = data, str(root / "out")
    cfg.train.steps, cfg.train.log_every, cfg.train.save_every = 40, 5, 20
  assert train.run(cfg) == 0
  return cfg, root / "out"


def test_loss_falls_and_outputs_are_written(tiny_run):
  cfg, out = tiny_run
  hist = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
  losses = [h["loss"] for h in hist if "loss" in h]
  assert len(losses) == 8
  assert np.mean(losses[-2:]) < 0.85 * np.mean(losses[:2]), losses
  nrtr = [h["nrtr"] for h in hist if "nrtr" in h]
  assert nrtr[-1] < nrtr[0]
  res = json.loads((out / "train_result.json").read_text())
  assert res["done_flag"] and res["steps"] == 40 and res["nonfinite_steps"] == 0
  assert res["replaced_records"] == 0  # every synthetic image reads
  assert 0.0 <= res["metrics"]["acc"] <= 1.0 and res["metrics"]["num"] == 16
  assert (out / "train_curve.png").stat().st_size > 1000
  log = (out / "train.log").read_text()
  assert "step 40/40" in log and "img/s" in log and "eta" in log and "lr" in log
  assert json.loads((out / "config.json").read_text())["model"]["name"] == "tiny_rec"
  assert sorted(os.listdir(out / "checkpoints")) == ["20", "40"]


def test_best_model_loads_and_evaluate_mode_agrees(tiny_run, tmp_path):
  cfg, out = tiny_run
  variables, cs = checkpoint.load_variables(str(out))
  assert cs.chars == tuple("0123456789abcdef ")
  assert variables["params"]["head"]["ctc_head"]["fc"]["kernel"].shape[-1] == 18
  assert checkpoint.read_meta(str(out))["model"] == "tiny_rec"
  from textrec.training import evaluate
  ecfg = tiny.get_config()
  with ecfg.unlocked():
    ecfg.dataset_dir, ecfg.output_dir = cfg.dataset_dir, str(tmp_path)
    ecfg.mode, ecfg.evaluate.weight_path = "evaluate", str(out)
  assert evaluate.run(ecfg) == 0
  ev = json.loads((tmp_path / "evaluate_result.json").read_text())
  best = json.loads((out / "train_result.json").read_text())["models"]["best"]
  assert ev["num_samples"] == 16
  assert ev["acc"] == pytest.approx(best["acc"], abs=1e-9)
  assert ev["norm_edit_dis"] == pytest.approx(best["norm_edit_dis"], abs=1e-9)


class _Toy(nn.Module):
  """Stand-in recogniser: image [B, H, W, 3] -> ctc_logits [B, 4, 5]."""

  @nn.compact
  def __call__(self, x, train=False, nrtr_targets=None):
    y = nn.Dense(20)(x.reshape(x.shape[0], -1)).reshape(x.shape[0], 4, 5)
    return {"ctc_logits": y}


def test_nonfinite_loss_skips_the_update():
  model = _Toy()
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 2, 3, 3)))
  ocfg = mlc.ConfigDict(dict(name="adam", lr=1e-2, warmup_epochs=0.0, schedule="cosine",
                             beta1=0.9, beta2=0.999, weight_decay=3e-5, clip_norm=10.0))
  tx, _ = optim.make_optimizer(ocfg, variables["params"], 10, 10)
  state = ts.create({"params": variables["params"]}, tx, seed=0)
  step = jax.jit(lambda s, b: train.train_step(s, b, model=model, tx=tx, nrtr_weight=0.0))
  good = dict(image=np.ones((2, 2, 3, 3), np.float32), label_ctc=np.array([[1, 2], [3, 0]]),
              label_ctc_pad=np.array([[0, 0], [0, 1]], np.float32),
              label_nrtr=np.zeros((2, 4), np.int32))
  bad = dict(good, image=np.full((2, 2, 3, 3), np.nan, np.float32))
  s1, m1 = step(state, bad)
  assert not bool(m1["ok"]) and int(s1.nonfinite) == 1 and int(s1.step) == 1
  same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s1.params, state.params)
  assert all(jax.tree.leaves(same))
  s2, _ = step(s1, bad)
  assert int(s2.nonfinite) == 2 and int(s2.nonfinite_total) == 2
  s3, m3 = step(s2, good)
  assert bool(m3["ok"]) and int(s3.nonfinite) == 0 and int(s3.nonfinite_total) == 2
  moved = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s3.params, s2.params)
  assert not all(jax.tree.leaves(moved))


def test_optimizer_rules_and_backbone_freeze():
  params = {"backbone": {"conv1": {"bn": {"scale": jnp.ones(3)}, "conv": {"kernel": jnp.ones(3)}},
                         "blocks2_0": {"lab": {"scale": jnp.ones(1)}}},
            "head": {"ctc_head": {"fc": {"kernel": jnp.ones(3)}}}}
  ocfg = mlc.ConfigDict(dict(name="adam", lr=1e-2, warmup_epochs=0.0, schedule="cosine",
                             beta1=0.9, beta2=0.999, weight_decay=1e-1, clip_norm=0.0))
  tx, _ = optim.make_optimizer(ocfg, params, 100, 10, freeze_backbone_steps=2)
  state = tx.init(params)
  zero = jax.tree.map(jnp.zeros_like, params)
  for i in range(3):
    upd, state = tx.update(zero, state, params)
    bb = float(jnp.abs(upd["backbone"]["conv1"]["conv"]["kernel"]).max())
    assert (bb == 0.0) == (i < 2), (i, bb)  # frozen for two updates
  # With a zero gradient, only the coupled L2 term moves a parameter: BatchNorm params in
  # ConvBNLayer (`bn`) have none (Paddle's L2Decay(0.0)); the rest do.
  assert float(jnp.abs(upd["backbone"]["conv1"]["bn"]["scale"]).max()) == 0.0
  assert float(jnp.abs(upd["head"]["ctc_head"]["fc"]["kernel"]).max()) > 0.0
  # LearnableAffineBlock params learn at 0.1x (same normalised Adam step, a tenth of the lr).
  lab = float(jnp.abs(upd["backbone"]["blocks2_0"]["lab"]["scale"]).max())
  conv = float(jnp.abs(upd["backbone"]["conv1"]["conv"]["kernel"]).max())
  assert lab == pytest.approx(0.1 * conv, rel=1e-3)


def test_freeze_bn_keeps_running_stats_and_trains_the_rest(tiny_run):
  """train.freeze_bn: BatchNorms (backbone's BatchNormAffine and flax BatchNorms in the neck)
  normalise with their running stats, which stay as they were; parameters still learn.
  Without it (the tiny training run) the same statistics move from their initial 0 / 1."""
  from textrec.models import recognizer  # pylint: disable=g-import-not-at-top
  from textrec.models import tiny as tiny_model  # pylint: disable=g-import-not-at-top

  model = tiny_model.tiny_rec(num_classes=18)
  variables = train_utils.random_variables(
      recognizer.variable_shapes(model, height=48, width=128, text_len=12), seed=0)
  ocfg = mlc.ConfigDict(dict(name="adam", lr=1e-3, warmup_epochs=0.0, schedule="cosine",
                             beta1=0.9, beta2=0.999, weight_decay=0.0, clip_norm=0.0))
  tx, _ = optim.make_optimizer(ocfg, variables["params"], 10, 10)
  mesh = train.make_mesh(jax.devices()[:1])
  rng = np.random.default_rng(0)
  batch = dict(image=rng.uniform(-1, 1, (2, 48, 128, 3)).astype(np.float32),
               label_ctc=np.array([[1, 2] + [0] * 8, [3, 4] + [0] * 8], np.int32),
               label_ctc_pad=np.array([[0, 0] + [1] * 8] * 2, np.float32),
               label_nrtr=np.array([[2, 4, 5, 3] + [0] * 8, [2, 6, 7, 3] + [0] * 8], np.int32))
  cfg = mlc.ConfigDict(dict(ctc_weight=1.0, nrtr_weight=1.0, ema_decay=0.0, freeze_bn=True))
  step = train.jit_train_step(model, tx, mesh, cfg)
  state = train.replicate(ts.create(variables, tx, 0), mesh)
  new, m = step(state, train.shard_batch(batch, mesh))
  assert bool(m["ok"])
  moved = jax.tree.map(lambda a, b: not bool(jnp.array_equal(a, b)), new.params, state.params)
  assert any(jax.tree.leaves(moved))
  same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new.batch_stats,
                      state.batch_stats)
  assert set(same) == {"backbone", "head"}
  assert all(jax.tree.leaves(same))  # every running statistic unchanged
  # Without the freeze: the tiny run's statistics, backbone and neck, are no longer 0 / 1.
  _, out = tiny_run
  trained, _ = checkpoint.load_variables(str(out))
  for part in ("backbone", "head"):
    stats = jax.tree_util.tree_flatten_with_path(trained["batch_stats"][part])[0]
    assert stats and any(
        not np.array_equal(np.asarray(v), np.full(np.shape(v), float(k[-1].key == "var")))
        for k, v in stats), part


@pytest.mark.parametrize("mode", ["drop", "train"])
def test_pretrained_without_nrtr_branch_drops_it_or_trains_it(tiny_run, monkeypatch, mode):
  """Inference weights have no NRTR branch: "drop" (the default) fine-tunes CTC-only with the
  guide off; "train" keeps the guided model and the NRTR loss."""
  from textrec.models import recognizer, tiny as tiny_model  # pylint: disable=g-import-not-at-top
  cfg, _ = tiny_run
  bare = tiny_model.tiny_rec(num_classes=18, with_nrtr=False)
  pre = train_utils.random_variables(
      recognizer.variable_shapes(bare, height=48, width=128, text_len=12), seed=1)
  monkeypatch.setattr(ts, "_load_pretrained", lambda c: (pre, None, False, "test weights"))
  c = tiny.get_config()
  with c.unlocked():
    c.train.pretrained, c.train.untrained_nrtr = "test", mode
  setup = ts.build(c, cfg.dataset_dir)
  assert setup.fresh_nrtr and setup.drop_nrtr == (mode == "drop")
  assert setup.model.head.neck["use_guide"] is (mode == "train")
  assert any("CTC-only" in m for m in setup.messages) == (mode == "drop")
  has_nrtr = any("gtc_head" in k for k in setup.variables["params"]["head"])
  assert has_nrtr == (mode == "train")  # dropped: no NRTR params to carry through Adam
  with c.unlocked():
    c.train.untrained_nrtr = "keep"
  with pytest.raises(ValueError, match="untrained_nrtr"):
    ts.drops_nrtr(c.train, True)


def test_periodic_runs_every_n_steps_and_at_the_last():
  assert [s for s in range(1, 13) if periodic.Periodic(5, 12).due(s)] == [5, 10, 12]
  assert [s for s in range(1, 4) if periodic.Periodic(10, 3).due(s)] == [3]
  assert [s for s in range(1, 5) if periodic.Periodic(0, 4).due(s)] == [4]


def _marker_blobs(png) -> int:
  """Blobs of the loss colour (matplotlib's C0) at least 4 px tall in the curve's left
  (training loss) panel: the legend's sample and each drawn point; a line alone is 2 px."""
  img = cv2.imread(str(png)).astype(int)  # BGR
  left = img[:, : img.shape[1] // 2]
  mask = (np.abs(left - np.array([180, 119, 31])).max(axis=-1) < 40).astype(np.uint8)
  _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
  return sum(1 for s in stats[1:] if s[cv2.CC_STAT_HEIGHT] >= 4)


def test_short_cli_run_draws_its_points(tmp_path):
  """A first try from the command line: 3 steps, log_every longer than the run. The last step
  is logged and the curve draws it (with a marker: a single point has no line)."""
  data = train_utils.make_dataset(tmp_path / "data", n_train=16, n_val=8)
  out = tmp_path / "out"
  r = train_utils.run(train_utils.main_cmd(
      "--config.mode=train", f"--config.dataset_dir={data}", f"--config.output_dir={out}",
      "--config.train.steps=3", "--config.train.log_every=10"), timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  hist = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
  assert [h["step"] for h in hist if "loss" in h] == [3]
  assert [h["step"] for h in hist if "eval_acc" in h] == [3]
  assert "step 3/3" in (out / "train.log").read_text()
  assert _marker_blobs(out / "train_curve.png") >= 2  # the legend's sample and step 3
