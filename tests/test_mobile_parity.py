"""PP-OCRv4_mobile_rec vs PaddleOCR's own outputs (tests/fixtures/paddle_ref).

Weights are replayed from the manifest (tests/paddle_ref.py), loaded with
textrec.weights.paddle.paddle_to_flax, and the forward pass is compared with the features and
probabilities PaddleOCR computed: training form, deploy (re-parameterised) form, and the
training-mode (batch statistics) path.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paddle_ref import load_io, manifest, replay
from textrec.models import recognizer, reparam
from textrec.models.registry import get_model
from textrec.weights import paddle as pw

MODEL = "PP-OCRv4_mobile_rec"
LAST_NON_NRTR = "head.ctc_head.fc.bias"


@pytest.fixture(scope="module")
def ref(paddle_ref_dir):
  state, io = replay(paddle_ref_dir, MODEL, stop_after=LAST_NON_NRTR)
  return state, io, manifest(paddle_ref_dir, MODEL)


@pytest.fixture(scope="module")
def train_form(ref):
  state, io, _ = ref
  model = get_model(MODEL)(num_classes=6625, with_nrtr=False)
  variables = pw.paddle_to_flax(state, recognizer.variable_shapes(model, with_nrtr=False))
  return model, variables


def _nhwc(io) -> jax.Array:
  return jnp.asarray(io["x"].transpose(0, 2, 3, 1))


def _feat_nchw(out) -> np.ndarray:
  return np.asarray(out["backbone_feat"]).transpose(0, 3, 1, 2)


def test_param_counts_match_paddle(ref, train_form):
  _, _, man = ref
  _, variables = train_form
  assert pw.param_count(variables) == man["n_params_excl_nrtr"]
  deploy = reparam.deploy_variables(variables)
  assert pw.param_count(deploy) == man["info"]["n_deploy_params_excl_nrtr"]


def test_train_form_matches_paddle(ref, train_form):
  _, io, _ = ref
  model, variables = train_form
  out = jax.jit(lambda v, x: model.apply(v, x, return_features=True))(variables, _nhwc(io))
  assert out["ctc_logits"].shape == (2, 40, 6625)
  feat = _feat_nchw(out)
  np.testing.assert_allclose(feat, io["backbone_feat"], atol=1e-3, rtol=0)
  np.testing.assert_allclose(np.asarray(out["ctc_neck"]), io["ctc_neck_feat"], atol=1e-3, rtol=0)
  probs = np.asarray(recognizer.probs(out))
  np.testing.assert_allclose(probs, io["probs_train_form"], atol=1e-5, rtol=1e-3)
  assert np.abs(probs - io["probs_train_form"]).max() <= 1e-4
  np.testing.assert_array_equal(probs.argmax(-1), io["probs_train_form"].argmax(-1))


def test_deploy_form_matches_paddle(ref, train_form):
  _, io, man = ref
  _, variables = train_form
  deploy_vars = reparam.deploy_variables(variables)
  state = pw.flax_to_paddle(deploy_vars)
  want = [e["name"] for e in man["deploy_params"] if not e["name"].startswith("head.gtc_head.")
          and not e["name"].startswith("head.before_gtc.")]
  assert sorted(state) == sorted(want)
  fused = [k for k in io if k.startswith("deploy_reparam/")]
  assert len(fused) == 20
  for k in fused:
    np.testing.assert_allclose(state[k.split("/", 1)[1]], io[k], atol=1e-5, rtol=1e-5, err_msg=k)
  model = get_model(MODEL)(num_classes=6625, deploy=True, with_nrtr=False)
  out = jax.jit(lambda v, x: model.apply(v, x, return_features=True))(deploy_vars, _nhwc(io))
  np.testing.assert_allclose(_feat_nchw(out), io["backbone_feat_deploy_form"], atol=1e-3, rtol=0)
  probs = np.asarray(recognizer.probs(out))
  np.testing.assert_allclose(probs, io["probs_deploy_form"], atol=1e-5, rtol=1e-3)
  assert np.abs(probs - io["probs_deploy_form"]).max() <= 1e-4


def test_training_mode_uses_batch_statistics(train_form, shared_paddle_ref_dir):
  """The fixture's BN running statistics are the per-batch statistics of the full batch `x`
  (README, "BN calibration"), so training mode (batch stats) on `x` must reproduce the eval
  features, and the momentum update must leave the statistics where they are. Dropout is off
  here. Needs the full batch: its third row is an IC15 crop, not in the repository."""
  io = load_io(shared_paddle_ref_dir, MODEL)
  _, variables = train_form
  neck = dict(recognizer.V4_NECK, drop_rate=0.0, attn_drop_rate=0.0)
  from textrec.models import pplcnetv3
  model = recognizer.build_recognizer(pplcnetv3.PPLCNetV3, dict(scale=0.95), neck, 6625)
  out, upd = jax.jit(lambda v, x: model.apply(v, x, train=True, return_features=True,
                                              mutable=["batch_stats"]))(variables, _nhwc(io))
  assert out["backbone_feat"].shape == (3, 1, 40, 480)  # adaptive pooling to [1, 40]
  np.testing.assert_allclose(_feat_nchw(out), io["backbone_feat"], atol=2e-3, rtol=0)
  np.testing.assert_allclose(np.asarray(out["ctc_neck"]), io["ctc_neck_feat"], atol=2e-3, rtol=0)
  old = jax.tree_util.tree_leaves(variables["batch_stats"])
  new = jax.tree_util.tree_leaves(upd["batch_stats"])
  worst = max(float(np.abs(np.asarray(a) - np.asarray(b)).max() / (np.abs(b).max() + 1e-6))
              for a, b in zip(new, old))
  assert worst < 1e-3


def test_training_step_small_model():
  """Training mode end to end on a small configuration: NRTR logits shape, finite gradients,
  and PaddleOCR's `use_guide`: the CTC branch sends no gradient into the backbone, NRTR does."""
  from textrec.models import pplcnetv3
  small = {"blocks2": ((3, 32, 64, (2, 1), True),), "blocks3": (), "blocks4": (),
           "blocks5": (), "blocks6": ()}
  neck = dict(dims=32, depth=1, hidden_dims=32, kernel_size=(1, 3), use_guide=True)
  nrtr = dict(out_channels=40, nrtr_dim=64, num_decoder_layers=1)
  model = recognizer.build_recognizer(pplcnetv3.PPLCNetV3,
                                      dict(scale=0.5, net_config=small, conv_kxk_num=2,
                                           train_pool_hw=(1, 8)),
                                      neck, num_classes=37, nrtr=nrtr)
  shapes = recognizer.variable_shapes(model, height=32, width=64, text_len=7)
  rng = np.random.default_rng(0)
  variables = jax.tree_util.tree_map(
      lambda s: (0.3 * rng.standard_normal(s.shape)).astype(np.float32), shapes)
  variables["batch_stats"] = jax.tree_util.tree_map(
      lambda s: np.ones(s.shape, np.float32), shapes["batch_stats"])
  x = jnp.asarray(rng.uniform(-1, 1, (2, 32, 64, 3)), jnp.float32)
  tgt = jnp.asarray([[2, 5, 6, 7, 3, 0, 0], [2, 9, 3, 0, 0, 0, 0]], jnp.int32)

  def losses(params):
    out, upd = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                           train=True, nrtr_targets=tgt, mutable=["batch_stats"],
                           rngs={"dropout": jax.random.key(1)})
    loss = jnp.stack([jnp.mean(out["ctc_logits"] ** 2), jnp.mean(out["nrtr_logits"] ** 2)])
    return loss, (out, upd)

  @jax.jit
  def grads(params):  # one forward, one backward per loss
    _, vjp, aux = jax.vjp(losses, params, has_aux=True)
    return vjp(jnp.array([1.0, 0.0]))[0], vjp(jnp.array([0.0, 1.0]))[0], aux

  g_ctc, g_nrtr, (out, upd) = grads(variables["params"])
  assert out["ctc_logits"].shape == (2, 8, 37)
  assert out["nrtr_logits"].shape == (2, 6, 41)
  assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(g_nrtr))
  norm = lambda t: sum(float(jnp.sum(jnp.abs(a))) for a in jax.tree_util.tree_leaves(t))
  assert norm(g_ctc["backbone"]) == 0.0 and norm(g_ctc["head"]["ctc_head"]) > 0
  assert norm(g_nrtr["backbone"]) > 0 and norm(g_nrtr["head"]["ctc_head"]) == 0
  # Running statistics moved towards the batch statistics.
  moved = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()),
                                 upd["batch_stats"], variables["batch_stats"])
  assert max(jax.tree_util.tree_leaves(moved)) > 0
