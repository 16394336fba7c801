"""The CPU fast paths of textrec/models/layers.py against XLA's own convolution: values and
(for the hand-written depthwise backward) gradients."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from textrec.models import layers


def _ref_dw(x, k, strides, padding):
  """Depthwise conv by lax: x [B,H,W,C], k [kh,kw,C]."""
  c = x.shape[-1]
  return lax.conv_general_dilated(
      x, k[:, :, None, :], strides, [(padding[0],) * 2, (padding[1],) * 2],
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
      precision=lax.Precision.HIGHEST)


@pytest.mark.parametrize("groups,k,stride,pad", [(8, 3, (2, 1), 1), (8, 5, (1, 2), 2),
                                                 (1, 1, (2, 1), 0), (1, 3, 1, 1),
                                                 (8, 3, (2, 2), 1), (4, 5, 1, 2),
                                                 (2, 3, (2, 1), 1)])
def test_conv2d_fast_equals_xla(groups, k, stride, pad):
  rng = np.random.default_rng(0)
  cin, cout = 8, 8 if groups == 8 else 16
  x = jnp.asarray(rng.standard_normal((2, 9, 13, cin)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((k, k, cin // groups, cout)), jnp.float32)
  a = layers.conv2d(x, w, stride, pad, groups, impl="fast")
  b = layers.conv2d(x, w, stride, pad, groups, impl="xla")
  assert a.shape == b.shape
  np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("strides", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_depthwise_multi_values_and_gradients(strides):
  rng = np.random.default_rng(1)
  kh = kw = 5
  pad = (2, 2)
  x = jnp.asarray(rng.standard_normal((2, 10, 14, 6)), jnp.float32)
  kk = jnp.asarray(rng.standard_normal((2, kh, kw, 6)), jnp.float32)   # two full kernels
  kc = jnp.asarray(rng.standard_normal((2, 6)), jnp.float32)           # two centre-only
  weights = [jnp.asarray(rng.standard_normal((1,)), jnp.float32) for _ in range(4)]

  def centre(kc_b):
    return jnp.zeros((kh, kw, kc_b.shape[0]), kc_b.dtype).at[pad[0], pad[1]].set(kc_b)

  def loss_fast(x, kk, kc):
    outs = layers.depthwise_multi(x, kk, kc, strides, pad)
    return sum(jnp.sum(jnp.sin(o) * w) for o, w in zip(outs, weights))

  def loss_ref(x, kk, kc):
    outs = [_ref_dw(x, kk[b], strides, pad) for b in range(2)]
    outs += [_ref_dw(x, centre(kc[b]), strides, pad) for b in range(2)]
    return sum(jnp.sum(jnp.sin(o) * w) for o, w in zip(outs, weights))

  fast = layers.depthwise_multi(x, kk, kc, strides, pad)
  for b in range(2):
    np.testing.assert_allclose(fast[b], _ref_dw(x, kk[b], strides, pad), atol=3e-5)
    np.testing.assert_allclose(fast[2 + b], _ref_dw(x, centre(kc[b]), strides, pad), atol=3e-5)
  g_fast = jax.grad(loss_fast, argnums=(0, 1, 2))(x, kk, kc)
  g_ref = jax.grad(loss_ref, argnums=(0, 1, 2))(x, kk, kc)
  for a, b in zip(g_fast, g_ref):
    assert a.shape == b.shape
    scale = float(jnp.max(jnp.abs(b)))
    np.testing.assert_allclose(a, b, atol=1e-4 * scale, rtol=1e-4)
