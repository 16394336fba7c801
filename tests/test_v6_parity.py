"""PP-OCRv6_small_rec, PP-OCRv6_tiny_rec and PP-OCRv6_medium_rec against PaddleOCR's own code.

For each model the PaddleOCR-named weights (NRTR branch included) are replayed from
tests/fixtures/paddle_ref (`manifest_<model>.json`, BN statistics calibrated as the fixtures'
README says), loaded through the `.pdparams` name mapping (textrec.weights.paddle), and our
eval forward on the synthetic batch x [2, 3, 48, 320] is compared with PaddleOCR's: backbone
output, CTC-neck output, tiny's CTC guide-layer output and the CTC probabilities; then the
same for the deploy form (PaddleOCR's `PPLCNetV4.rep()`, our `zoo.to_deploy`), whose fused
tensors are compared one by one.

What the repository stores (scripts/make_test_fixtures.py, "Size"): the training-form features
of both rows; the probabilities of row 0, as float16, for the first 16 time steps (training
form) and 8 (deploy form); the deploy-form features of row 0; the fused tensors of at most
2**15 values. float16 rounds the probabilities to within 4.9e-4 relative (3e-8 absolute below
6.1e-5), inside the tolerance used here (atol 1e-5, rtol 1e-3). Features: atol 1e-3
(PaddleOCR's own float32-vs-float64 error on them is at most 4.3e-5, the fixtures' README).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import parity
from paddle_ref import manifest
from textrec.models import pplcnetv4, recognizer, registry, zoo
from textrec.runtime import settings
from textrec.weights import paddle as pw

SMALL, TINY, MEDIUM = "PP-OCRv6_small_rec", "PP-OCRv6_tiny_rec", "PP-OCRv6_medium_rec"
MODELS = (SMALL, TINY, MEDIUM)
# model -> (CTC classes, backbone channels, neck width)
SHAPES = {SMALL: (18710, 384, 120), TINY: (6906, 160, 160), MEDIUM: (18710, 768, 192)}
PE = "head.gtc_head.positional_encoding.pe"  # constant buffer, not a variable here
FEAT_TOL = 1e-3


@pytest.fixture(scope="module")
def loaded(paddle_ref_dir):
  return parity.replayed_models(paddle_ref_dir)


@pytest.mark.parametrize("name", MODELS)
def test_train_form_matches_paddleocr(loaded, name):
  _, io, _, report, ours = loaded(name)
  assert report.ok, report.describe()
  _, channels, width = SHAPES[name]
  assert io["backbone_feat"].shape == (2, channels, 1, 40)
  assert io["ctc_neck_feat"].shape == (2, 40, width)
  db = parity.maxdiff(ours["backbone"], io["backbone_feat"])
  dn = parity.maxdiff(ours["neck"], io["ctc_neck_feat"])
  msg = f"{name}: max|d| backbone {db:.2e} neck {dn:.2e}"
  assert db < FEAT_TOL, db
  assert dn < FEAT_TOL, dn
  if name == TINY:
    dg = parity.maxdiff(ours["guide"], io["ctc_guide_feat"])
    msg += f" guide {dg:.2e}"
    assert dg < FEAT_TOL, dg
  else:
    assert "guide" not in ours
  dp = parity.check_probs(name, ours["probs"], io["probs_train_form"], SHAPES[name][0])
  print(f"{msg} probs {dp:.2e}")


@pytest.mark.parametrize("name", MODELS)
def test_names_and_param_counts_match_paddleocr(loaded, paddle_ref_dir, name):
  """Every PaddleOCR tensor maps one to one (tiny's conv1d guide weights included)."""
  sd, _, variables, report, _ = loaded(name)
  m = manifest(paddle_ref_dir, name)
  assert report.ignored == [PE]
  assert set(pw.flax_to_paddle(variables, reference_names=sd)) == set(sd)
  assert pw.param_count(variables) + sd[PE].size == m["n_params_total"]
  assert pw.param_count(variables, exclude="gtc") == m["n_params_excl_nrtr"]


@pytest.mark.parametrize("name", MODELS)
def test_deploy_form_matches_paddleocr(loaded, paddle_ref_dir, name):
  _, io, variables, _, _ = loaded(name)
  m = manifest(paddle_ref_dir, name)
  deploy_vars, state, worst = parity.deploy_form(name, variables, m, io, min_fused=18)
  # Idempotent: fused variables come back unchanged.
  again = zoo.to_deploy(name, deploy_vars)
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, again, deploy_vars))
  # PaddleOCR's deploy-form names load into the deploy-form model, one to one.
  _, back = pw.paddle_to_flax(state, model_name=name, deploy=True, strict=False)
  assert back.ok, back.describe()
  model = registry.get_model(name)(deploy=True)
  ours = parity.forward(model, deploy_vars, jnp.asarray(io["x"].transpose(0, 2, 3, 1)))
  ref_b = io["backbone_feat_deploy_form"]  # row 0
  db = parity.maxdiff(ours["backbone"][:len(ref_b)], ref_b)
  msg = f"{name} deploy: max|d| fused tensors {worst:.2e} backbone {db:.2e}"
  assert db < FEAT_TOL, db
  if name == TINY:
    ref_g = io["ctc_guide_feat_deploy_form"]
    dg = parity.maxdiff(ours["guide"][:len(ref_g)], ref_g)
    msg += f" guide {dg:.2e}"
    assert dg < FEAT_TOL, dg
  dp = parity.check_probs(name + " deploy", ours["probs"], io["probs_deploy_form"],
                          SHAPES[name][0])
  print(f"{msg} probs {dp:.2e}")


def test_deploy_form_fuses_the_whole_backbone(loaded):
  """PPLCNetV4.rep(): no BatchNorm left in the small backbone; tiny keeps its simple stem's
  two (as PaddleOCR's export, whose official ONNX graphs keep them too)."""
  for name, kept in ((SMALL, []), (TINY, ["conv1_0", "conv1_2"])):
    deploy_vars = pplcnetv4.deploy_variables(loaded(name)[2])
    assert sorted(deploy_vars["batch_stats"].get("backbone", {})) == kept


def test_medium_training_forward_shapes():
  """Training mode of PP-OCRv6_medium_rec, traced only (nothing compiles): the backbone pools
  to T = 40, NRTR (dim 512) predicts 18713 + 1 classes."""
  model = registry.get_model(MEDIUM)()
  shapes, out = parity.training_shapes(model)
  assert shapes["params"]["head"]["before_gtc_1"]["fc"]["kernel"].shape == (768, 512)
  assert out["backbone_feat"].shape == (1, 1, 40, 768)
  assert out["ctc_logits"].shape == (1, 40, 18710)
  assert out["nrtr_logits"].shape == (1, 26, 18713 + 1)
  x = jax.ShapeDtypeStruct((1, 48, 256, 3), jnp.float32)
  y = jax.eval_shape(lambda v, x: model.apply(v, x), shapes, x)
  assert y["ctc_logits"].shape == (1, 32, 18710)  # eval: T = W/8


@pytest.mark.parametrize("name", [SMALL, TINY])
def test_deploy_form_with_the_default_conv_impl(loaded, name):
  """The deploy form as inference runs it on this backend (settings' "auto": on the CPU the
  "fast" depthwise / 1x1 convs and per-image attention), against PaddleOCR's probabilities."""
  _, io, variables, _, _ = loaded(name)
  model = registry.get_model(name)(deploy=True)
  out = jax.jit(lambda v, x: model.apply(v, x))(zoo.to_deploy(name, variables),
                                               jnp.asarray(io["x"].transpose(0, 2, 3, 1)))
  dp = parity.check_probs(name + " deploy", np.asarray(recognizer.probs(out)),
                          io["probs_deploy_form"], SHAPES[name][0])
  print(f"{name} deploy ({settings.current_conv_impl(jax.default_backend())}): "
        f"max|d| probs {dp:.2e}")
