"""PP-OCRv4_server_rec, ch_SVTRv2_rec and ch_RepSVTR_rec against PaddleOCR's own code.

For each model the PaddleOCR-named weights are replayed from tests/fixtures/paddle_ref
(`manifest_<model>.json`, BN statistics calibrated as its README says), loaded through the
`.pdparams` name mapping (textrec.weights.paddle), and our eval forward on the stored batch
x [2, 3, 48, 320] is compared with PaddleOCR's backbone output, CTC-neck output and CTC
probabilities. RepSVTR's fused (deploy) form is compared with the fixture's THU-MIG-style
fused backbone and with our unfused outputs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paddle_ref import manifest, replay
from textrec.models import registry
from textrec.models import layers, pphgnet, recognizer, repsvtr, svtrv2, zoo
from textrec.runtime import settings
from textrec.weights import paddle as pw

MODELS = ("PP-OCRv4_server_rec", "ch_SVTRv2_rec", "ch_RepSVTR_rec")
PE = "head.gtc_head.positional_encoding.pe"  # constant buffer, not a variable here


def _forward(model, variables, x):
  # Plain XLA convs (Conv2D's "fast" path is checked against "xla" on its own), jitted: one
  # compile of the graph takes a third of the time that running it eagerly (one small compile
  # per op) does on 2 CPU cores.
  with settings.conv_impl("xla"):
    out = jax.jit(lambda v, x: model.apply(v, x, train=False, return_features=True))(
        variables, x)
  return {"backbone": np.asarray(out["backbone_feat"]).transpose(0, 3, 1, 2),  # NCHW as Paddle
          "neck": np.asarray(out["ctc_neck"]),
          "probs": np.asarray(jax.nn.softmax(out["ctc_logits"], axis=-1))}


@pytest.fixture(scope="module")
def loaded(paddle_ref_dir):
  """name -> (state_dict, io, variables loaded through paddle_to_flax, our eval outputs)."""
  cache = {}

  def get(name):
    if name not in cache:
      sd, io = replay(paddle_ref_dir, name)  # NRTR included: its names must map as well
      variables = pw.paddle_to_flax(sd, model_name=name)  # strict: raises on any mismatch
      model = registry.get_model(name)(num_classes=6625)
      x = jnp.asarray(io["x"].transpose(0, 2, 3, 1))
      cache[name] = (sd, io, variables, _forward(model, variables, x))
    return cache[name]

  return get


@pytest.mark.parametrize("name", MODELS)
def test_matches_paddleocr(loaded, name):
  _, io, _, ours = loaded(name)
  ref_b, ref_n, ref_p = io["backbone_feat"], io["ctc_neck_feat"], io["probs_train_form"]
  assert ours["backbone"].shape == ref_b.shape
  assert ours["neck"].shape == ref_n.shape
  assert ours["probs"].shape == ref_p.shape == (2, 40, 6625)
  db = np.abs(ours["backbone"] - ref_b).max()
  dn = np.abs(ours["neck"] - ref_n).max()
  dp = np.abs(ours["probs"] - ref_p).max()
  print(f"{name}: max|d| backbone {db:.2e} neck {dn:.2e} probs {dp:.2e}")
  assert db < 2e-4, db
  assert dn < 1e-3, dn
  assert dp <= 1e-4, dp
  np.testing.assert_allclose(ours["probs"], ref_p, atol=1e-5, rtol=1e-3)
  np.testing.assert_array_equal(ours["probs"].argmax(-1), ref_p.argmax(-1))


@pytest.mark.parametrize("name", MODELS)
def test_param_counts_match_paddleocr(loaded, paddle_ref_dir, name):
  sd, _, variables, _ = loaded(name)
  m = manifest(paddle_ref_dir, name)
  assert set(pw.flax_to_paddle(variables, reference_names=sd)) == set(sd)
  assert pw.param_count(variables) + sd[PE].size == m["n_params_total"]
  assert pw.param_count(variables, exclude="gtc") == m["n_params_excl_nrtr"]


def test_repsvtr_fused_form(loaded, paddle_ref_dir):
  name = "ch_RepSVTR_rec"
  _, io, variables, unfused = loaded(name)
  fused_vars = zoo.to_deploy(name, variables)
  model = registry.get_model(name)(num_classes=6625, deploy=True)
  x = jnp.asarray(io["x"].transpose(0, 2, 3, 1))
  fused = _forward(model, fused_vars, x)
  # Names and count of the fused backbone as PaddleOCR's fuse() methods leave them.
  m = manifest(paddle_ref_dir, name)
  want = {e["name"] for e in m["fused_params_not_paddleocr_export"]
          if e["name"].startswith("backbone.")}
  got = {n for n in pw.flax_to_paddle(fused_vars, with_buffers=False) if n.startswith("backbone.")}
  assert got == want
  assert "backbone" not in fused_vars.get("batch_stats", {})
  assert pw.param_count(fused_vars, exclude="gtc") == m["info"]["n_fused_params_excl_nrtr"]
  d_ref = np.abs(fused["backbone"] - io["backbone_feat_fused_form"]).max()
  d_unf = np.abs(fused["backbone"] - unfused["backbone"]).max()
  dp_ref = np.abs(fused["probs"] - io["probs_train_form"]).max()
  dp_unf = np.abs(fused["probs"] - unfused["probs"]).max()
  print(f"RepSVTR fused: backbone vs Paddle fused {d_ref:.2e}, vs ours unfused {d_unf:.2e}; "
        f"probs vs Paddle {dp_ref:.2e}, vs ours unfused {dp_unf:.2e}")
  assert d_ref < 2e-4 and d_unf < 2e-4
  assert dp_ref <= 1e-4 and dp_unf <= 1e-4
  np.testing.assert_allclose(fused["probs"], io["probs_train_form"], atol=1e-5, rtol=1e-3)


def test_repsvtr_fuse_is_exact_on_random_stats():
  """The fusion algebra on a small RepSVTR with non-trivial BN statistics (no fixtures)."""
  cfgs = ((3, 2, 16, 1, 0, 1), (3, 2, 32, 0, 1, (2, 1)), (3, 2, 32, 1, 1, 1))
  x = np.random.default_rng(1).standard_normal((2, 32, 64, 3)).astype(np.float32)
  train_m, deploy_m = repsvtr.RepSVTR(cfgs), repsvtr.RepSVTR(cfgs, deploy=True)
  rng = np.random.default_rng(2)
  # Random values everywhere: non-trivial BN scale/shift/statistics and conv1 biases.
  v = jax.tree.map(
      lambda l: (rng.uniform(0.5, 1.5, l.shape) if len(l.shape) == 1
                 else rng.standard_normal(l.shape) / np.sqrt(np.prod(l.shape[:-1])))
      .astype(np.float32), jax.eval_shape(train_m.init, jax.random.key(0), x))
  y = np.asarray(jax.jit(train_m.apply)(v, x))
  yd = np.asarray(jax.jit(deploy_m.apply)(repsvtr.fuse_variables(v), x))
  assert y.shape == yd.shape == (2, 1, 8, 32)
  np.testing.assert_allclose(yd, y, atol=1e-4 * float(np.abs(y).max()), rtol=0)


def test_train_mode_pooling_and_heads():
  """Training forward (traced, not run): PPHGNet pools to T = 40 in training and W/8 in eval
  (PaddleOCR); SVTRv2 (drop path) + neck + NRTR give CTC and NRTR logits of the right shapes."""
  x = np.zeros((1, 32, 256, 3), np.float32)
  hg = pphgnet.PPHGNet(stem_channels=(8, 8, 16),
                       stages=((16, 8, 16, 1, True, (2, 1)), (16, 8, 16, 1, True, (1, 2)),
                               (16, 8, 16, 1, True, (2, 1)), (16, 8, 16, 1, True, (2, 1))),
                       layer_num=2)
  x48 = np.zeros((1, 48, 256, 3), np.float32)
  v = jax.eval_shape(hg.init, jax.random.key(0), x48)  # shapes only: nothing to compile
  y_eval = jax.eval_shape(hg.apply, v, x48)
  y_train, _ = jax.eval_shape(lambda v, x: hg.apply(v, x, train=True, mutable=["batch_stats"]),
                              v, x)
  assert y_eval.shape == (1, 1, 32, 16) and y_train.shape == (1, 1, 40, 16)

  backbone = dict(dims=(16, 32, 48), depths=(1, 2, 1), num_heads=(2, 2, 2),
                  mixer=(("Conv",), ("Conv", "Global"), ("Global",)), drop_path_rate=0.5)
  neck = dict(zoo.SVTRV2_NECK, dims=32, hidden_dims=32)
  model = recognizer.build_recognizer(svtrv2.SVTRv2, backbone, neck, 11,
                                      dict(out_channels=14, nrtr_dim=64, num_decoder_layers=1))
  tgt = np.array([[2, 5, 6, 3, 0, 0]], np.int32)

  def run(x, tgt):
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                           x, train=True, nrtr_targets=tgt)
    return model.apply(variables, x, train=True, nrtr_targets=tgt, mutable=["batch_stats"],
                       rngs={"dropout": jax.random.key(3)})

  out, upd = jax.eval_shape(run, x, tgt)  # traces the training path (drop path rng included)
  assert out["ctc_logits"].shape == (1, 32, 11)
  assert out["nrtr_logits"].shape == (1, 5, 15)
  assert "backbone" in upd["batch_stats"]
