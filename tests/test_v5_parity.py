"""PP-OCRv5_mobile_rec and PP-OCRv5_server_rec against PaddleOCR's own code.

For each model the PaddleOCR-named weights (NRTR branch included) are replayed from
tests/fixtures/paddle_ref (`manifest_<model>.json`, BN statistics calibrated as the fixtures'
README says), loaded through the `.pdparams` name mapping (textrec.weights.paddle), and our
eval forward on the synthetic batch x [2, 3, 48, 320] is compared with PaddleOCR's backbone
output, CTC-neck output and CTC probabilities [2, 40, 18385]; for the mobile model also its
deploy (re-parameterised) form. With ../shared present, the server backbone's training mode
(batch statistics) is checked on the full batch too.

The stored probabilities are float16 (scripts/make_test_fixtures.py, "Size"): float16 rounds
them to within 4.9e-4 relative (3e-8 absolute below 6.1e-5), inside the tolerance used here
(atol 1e-5, rtol 1e-3). The mobile deploy-form probabilities are stored for row 0 only.
Feature tolerances: 1e-3 for the mobile model; 2e-3 for the server model, whose own
float32-vs-float64 error in PaddleOCR reaches 7.3e-4 on the neck (the fixtures' README).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity
from paddle_ref import load_io, manifest
from textrec.models import registry
from textrec.runtime import settings
from textrec.weights import paddle as pw

MOBILE, SERVER = "PP-OCRv5_mobile_rec", "PP-OCRv5_server_rec"
NUM_CLASSES = 18385
PE = "head.gtc_head.positional_encoding.pe"  # constant buffer, not a variable here
UNUSED = ["backbone.last_conv.weight", "backbone.fc.weight", "backbone.fc.bias"]


@pytest.fixture(scope="module")
def loaded(paddle_ref_dir):
  return parity.replayed_models(paddle_ref_dir)


def _nhwc(io) -> jax.Array:
  return jnp.asarray(io["x"].transpose(0, 2, 3, 1))


@pytest.mark.parametrize("name,feat_tol", [(MOBILE, 1e-3), (SERVER, 2e-3)])
def test_train_form_matches_paddleocr(loaded, name, feat_tol):
  _, io, _, report, ours = loaded(name)
  assert report.ok, report.describe()
  ref_b, ref_n = io["backbone_feat"], io["ctc_neck_feat"]
  assert ours["backbone"].shape == ref_b.shape
  assert ours["neck"].shape == ref_n.shape == (2, 40, 120)
  db = float(np.abs(ours["backbone"] - ref_b).max())
  dn = float(np.abs(ours["neck"] - ref_n).max())
  print(f"{name}: max|d| backbone {db:.2e} neck {dn:.2e}")
  assert db < feat_tol, db
  assert dn < feat_tol, dn
  parity.check_probs(name, ours["probs"], io["probs_train_form"], NUM_CLASSES)


@pytest.mark.parametrize("name", [MOBILE, SERVER])
def test_names_and_param_counts_match_paddleocr(loaded, paddle_ref_dir, name):
  """Every PaddleOCR tensor maps one to one, except PPHGNetV2's classifier (never run in
  text recognition), which the loader skips and reports."""
  sd, _, variables, report, _ = loaded(name)
  m = manifest(paddle_ref_dir, name)
  unused = UNUSED if name == SERVER else []
  assert sorted(report.ignored) == sorted([PE] + unused)
  assert unused == m["info"].get("unused_in_eval_forward", {}).get("names", [])
  assert set(pw.flax_to_paddle(variables, reference_names=sd)) == set(sd) - set(unused)
  n_unused = sum(sd[n].size for n in unused)
  assert pw.param_count(variables) + sd[PE].size + n_unused == m["n_params_total"]
  assert pw.param_count(variables, exclude="gtc") + n_unused == m["n_params_excl_nrtr"]
  assert variables["params"]["head"]["ctc_head"]["fc"]["kernel"].shape == (120, NUM_CLASSES)


def test_mobile_deploy_form_matches_paddleocr(loaded, paddle_ref_dir):
  _, io, variables, _, _ = loaded(MOBILE)
  m = manifest(paddle_ref_dir, MOBILE)
  deploy_vars, _, worst = parity.deploy_form(MOBILE, variables, m, io, min_fused=20)
  assert sum(k.startswith("deploy_reparam/") for k in io) == 20  # blocks2-4, as PaddleOCR
  model = registry.get_model(MOBILE)(deploy=True)
  ours = parity.forward(model, deploy_vars, _nhwc(io))
  db = float(np.abs(ours["backbone"] - io["backbone_feat_deploy_form"]).max())
  print(f"{MOBILE} deploy: max|d| fused tensors {worst:.2e} backbone {db:.2e}")
  assert db < 1e-3, db
  ref_p = io["probs_deploy_form"]  # row 0 only
  parity.check_probs(MOBILE + " deploy", ours["probs"], ref_p, NUM_CLASSES)


def test_server_training_forward_shapes():
  """Training mode of the full PP-OCRv5_server_rec, traced only (nothing compiles): the backbone
  pools to T = 40 (PaddleOCR's adaptive_avg_pool2d([1, 40])), NRTR predicts 18388 + 1 classes."""
  model = registry.get_model(SERVER)()
  shapes, out = parity.training_shapes(model)
  assert out["backbone_feat"].shape == (1, 1, 40, 2048)
  assert out["ctc_logits"].shape == (1, 40, NUM_CLASSES)
  assert out["nrtr_logits"].shape == (1, 26, NUM_CLASSES + 3 + 1)
  x = jax.ShapeDtypeStruct((1, 48, 256, 3), jnp.float32)
  y = jax.eval_shape(lambda v, x: model.apply(v, x), shapes, x)
  assert y["ctc_logits"].shape == (1, 32, NUM_CLASSES)  # eval: T = W/8


def test_server_training_mode_uses_batch_statistics(loaded, shared_paddle_ref_dir):
  """The fixture's BN running statistics are the batch statistics of the full batch `x`
  (the fixtures' README, "BN calibration"), so PPHGNetV2's training mode (batch statistics,
  adaptive pooling to [1, 40]) on that batch must give PaddleOCR's eval features, and the
  momentum update must leave the statistics where they are. Needs the full batch: its third
  row is an IC15 crop, not in the repository."""
  io = load_io(shared_paddle_ref_dir, SERVER)
  _, _, variables, _, _ = loaded(SERVER)
  backbone = registry.get_model(SERVER)().backbone
  bb_vars = {c: variables[c]["backbone"] for c in ("params", "batch_stats")}
  with settings.conv_impl("xla"):
    feat, upd = jax.jit(lambda v, x: backbone.apply(v, x, train=True, mutable=["batch_stats"]))(
        bb_vars, _nhwc(io))
  feat = np.asarray(feat).transpose(0, 3, 1, 2)
  assert feat.shape == io["backbone_feat"].shape == (3, 2048, 1, 40)
  db = float(np.abs(feat - io["backbone_feat"]).max())
  print(f"{SERVER} training mode: max|d| backbone {db:.2e}")
  assert db < 2e-3, db
  old = jax.tree_util.tree_leaves(bb_vars["batch_stats"])
  new = jax.tree_util.tree_leaves(upd["batch_stats"])
  worst = max(float(np.abs(np.asarray(a) - np.asarray(b)).max() / (np.abs(b).max() + 1e-6))
              for a, b in zip(new, old))
  assert worst < 1e-3, worst
