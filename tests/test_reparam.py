"""textrec/models/reparam.py: the deploy (fused) form computes what the training form computes
in eval mode, on random parameters, for every LearnableRepLayer variant (identity branch or
not, 1x1 branch or not, int / tuple strides, the int stride 2 that skips the activation, SE).
The fixture comparison with Paddle's own fused weights is in test_mobile_parity.py."""
from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from textrec.models import layers, pplcnetv3, recognizer, reparam

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

# (kernel, in_c, out_c, stride, use_se) before scaling (scale 0.5 keeps 16-multiples).
SMALL = {
    "blocks2": ((3, 32, 32, 1, False),),            # dw identity + pw identity
    "blocks3": ((3, 32, 64, (2, 1), False),),       # tuple stride: no identity, act kept
    "blocks4": ((5, 64, 64, 2, True),),             # int stride 2: no act, SE
    "blocks5": ((5, 64, 96, (1, 2), False),),
    "blocks6": ((3, 96, 96, 1, True),),
}
NECK = dict(dims=32, depth=1, hidden_dims=32, kernel_size=(1, 3), use_guide=True)


def _model(deploy: bool):
  return recognizer.build_recognizer(
      pplcnetv3.PPLCNetV3, dict(scale=0.5, net_config=SMALL, eval_pool=(4, 2)), NECK,
      num_classes=37, deploy=deploy)


@pytest.fixture(scope="module")
def forms():
  """(train-form model, deploy-form model, jitted forward of each); compiled once."""
  train_model, deploy_model = _model(False), _model(True)
  fwd = lambda m: jax.jit(lambda v, x: m.apply(v, x, return_features=True))
  return train_model, deploy_model, fwd(train_model), fwd(deploy_model)


@pytest.mark.parametrize("seed", [0, 1])
def test_deploy_form_matches_train_form_on_random_params(forms, seed):
  train_model, deploy_model, fwd_train, fwd_deploy = forms
  x = jax.random.normal(jax.random.key(100 + seed), (2, 32, 64, 3))
  shapes = recognizer.variable_shapes(train_model, height=32, width=64, with_nrtr=False)
  v = train_utils.random_variables(shapes, seed)
  dv = reparam.deploy_variables(v)
  # The deploy tree is exactly what the deploy module expects.
  want = recognizer.variable_shapes(deploy_model, height=32, width=64, with_nrtr=False)
  assert jax.tree_util.tree_structure(dv) == jax.tree_util.tree_structure(want)
  assert jax.tree_util.tree_map(lambda a: a.shape, dv) == jax.tree_util.tree_map(
      lambda a: a.shape, want)
  a = fwd_train(v, x)
  b = fwd_deploy(dv, x)
  scale = float(np.abs(a["backbone_feat"]).max())
  assert scale > 0.1  # a non-degenerate signal
  np.testing.assert_allclose(b["backbone_feat"], a["backbone_feat"], atol=1e-4 * max(scale, 1))
  logit_scale = float(np.abs(a["ctc_logits"]).max())
  np.testing.assert_allclose(b["ctc_logits"], a["ctc_logits"], atol=1e-5 * max(logit_scale, 10))
  pa, pb = recognizer.probs(a), recognizer.probs(b)
  assert float(np.abs(np.asarray(pa) - np.asarray(pb)).max()) <= 1e-4
  # Deploy drops exactly the branch parameters and statistics.
  n_train = sum(x.size for x in jax.tree_util.tree_leaves(v))
  n_deploy = sum(x.size for x in jax.tree_util.tree_leaves(dv))
  assert n_deploy < n_train


@pytest.mark.parametrize("channels,groups,k", [(8, 8, 3), (8, 1, 1), (8, 8, 5), (12, 3, 3)])
def test_identity_kernel_is_identity(channels, groups, k):
  x = jax.random.normal(jax.random.key(0), (1, 7, 9, channels))
  ker = reparam.identity_kernel(channels, channels // groups, k)
  y = layers.conv2d(x, jnp.asarray(ker), 1, k // 2, groups, impl="xla")
  np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_fuse_bn_matches_conv_then_bn():
  k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
  x = jax.random.normal(k1, (2, 6, 6, 4))
  ker = np.asarray(jax.random.normal(k2, (3, 3, 4, 5)))
  bn = {"scale": np.linspace(0.5, 1.5, 5, dtype=np.float32),
        "bias": np.linspace(-0.3, 0.3, 5, dtype=np.float32)}
  st = {"mean": np.asarray(jax.random.normal(k3, (5,))),
        "var": np.linspace(0.2, 2.0, 5, dtype=np.float32)}
  y = layers.conv2d(x, jnp.asarray(ker), 1, 1, impl="xla")
  ref = (y - st["mean"]) / np.sqrt(st["var"] + 1e-5) * bn["scale"] + bn["bias"]
  fk, fb = reparam.fuse_bn(ker, bn, st)
  got = layers.conv2d(x, jnp.asarray(fk), 1, 1, impl="xla") + fb
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=1e-5)


@pytest.mark.parametrize("impl", ["fast", "xla"])
@pytest.mark.parametrize("cin,cout,groups,k,stride", [
    (8, 8, 8, 5, 1), (8, 8, 8, 3, (2, 1)), (8, 16, 1, 1, 1), (12, 6, 3, 3, (1, 2))])
def test_multi_conv2d_equals_separate_convs(impl, cin, cout, groups, k, stride):
  """LearnableRepLayer runs its k x k branches as one multi_conv2d."""
  keys = jax.random.split(jax.random.key(7), 5)
  x = jax.random.normal(keys[0], (2, 9, 10, cin))
  kernels = [jax.random.normal(kk, (k, k, cin // groups, cout)) for kk in keys[1:]]
  got = layers.multi_conv2d(x, kernels, stride, k // 2, groups, impl=impl)
  for g, ker in zip(got, kernels):
    want = layers.conv2d(x, ker, stride, k // 2, groups, impl="xla")
    np.testing.assert_allclose(np.asarray(g), np.asarray(want), atol=1e-4, rtol=1e-5)
