"""The native depthwise conv (textrec/runtime/native_depthwise.cc) against XLA's own grouped
convolution: values over kernel sizes, strides, paddings and channel counts (multiples of 16
and not), gradients through layers.depthwise_multi, and the fall-back without a compiler."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from textrec.models import layers
from textrec.runtime import native_depthwise, settings

REPO = pathlib.Path(__file__).resolve().parents[1]

# A platform without the kernel (another backend, several devices, no C++ compiler, or turned
# off by its environment variable) skips; where it can be built, a build failure fails.
_PLATFORM = (jax.default_backend() == "cpu" and jax.device_count() == 1
             and settings.get().native_kernels
             and native_depthwise._compiler() is not None)  # pylint: disable=protected-access
pytestmark = pytest.mark.skipif(not _PLATFORM, reason="native depthwise conv not built here (no "
                                "C++ compiler, not the CPU, several devices, or turned off)")


def test_kernel_builds_where_it_can():
  assert native_depthwise.available(), "the native depthwise conv failed to build or register"


def _ref(x, k, strides, padding):
  return lax.conv_general_dilated(
      x, k[:, :, None, :], strides, [(padding[0],) * 2, (padding[1],) * 2],
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1],
      precision=lax.Precision.HIGHEST)


# (x shape, kernel hw, strides, padding): mobile's shapes, channel remainders (24, 3), rows
# narrower than the kernel, padding other than (k-1)/2, 1x3 kernels, uneven channel groups.
CASES = [((2, 12, 40, 240), (5, 5), (1, 1), (2, 2)),
         ((1, 12, 40, 64), (3, 3), (2, 1), (1, 1)),
         ((3, 7, 33, 24), (3, 3), (1, 2), (1, 1)),
         ((2, 6, 21, 32), (5, 5), (2, 2), (2, 2)),
         ((1, 5, 3, 16), (5, 5), (1, 1), (2, 2)),
         ((2, 9, 17, 3), (3, 3), (1, 1), (0, 0)),
         ((1, 4, 30, 48), (1, 3), (1, 1), (0, 1)),
         ((2, 8, 19, 40), (3, 5), (1, 1), (1, 2)),
         ((1, 3, 7, 130), (3, 3), (1, 1), (1, 1)),      # channel groups of 64 + 2
         ((1, 2, 5, 1040), (3, 3), (2, 1), (1, 1))]     # groups that round past C


@pytest.mark.parametrize("shape,khw,strides,padding", CASES)
def test_values_equal_xla(shape, khw, strides, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  k = jnp.asarray(rng.standard_normal((*khw, shape[-1])), jnp.float32)
  f = jax.jit(native_depthwise.depthwise_conv, static_argnums=(2, 3))
  assert native_depthwise.TARGET in f.lower(x, k, strides, padding).as_text()
  got = f(x, k, strides, padding)
  want = _ref(x, k, strides, padding)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


def test_depthwise_multi_runs_it_and_keeps_its_gradient():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 10, 14, 32)), jnp.float32)
  kk = jnp.asarray(rng.standard_normal((1, 5, 5, 32)), jnp.float32)
  none = jnp.zeros((0, 32), jnp.float32)

  def loss(x, kk, conv):
    return jnp.sum(jnp.sin(conv(x, kk)))

  fast = lambda x, kk: layers.depthwise_multi(x, kk, none, (2, 1), (2, 2))[0]  # noqa: E731
  ref = lambda x, kk: _ref(x, kk[0], (2, 1), (2, 2))  # noqa: E731
  assert native_depthwise.TARGET in jax.jit(fast).lower(x, kk).as_text()
  np.testing.assert_allclose(jax.jit(fast)(x, kk), ref(x, kk), atol=3e-5)
  for a, b in zip(jax.grad(loss, (0, 1))(x, kk, fast), jax.grad(loss, (0, 1))(x, kk, ref)):
    np.testing.assert_allclose(a, b, atol=1e-4 * float(jnp.max(jnp.abs(b))), rtol=1e-4)


def test_without_a_compiler_it_falls_back_with_one_warning(tmp_path):
  code = ("import numpy as np, jax, jax.numpy as jnp\n"
          "from textrec.models import layers\n"
          "from textrec.runtime import native_depthwise\n"
          "assert not native_depthwise.available()\n"
          "x = jnp.ones((1, 6, 9, 16)); k = jnp.ones((1, 3, 3, 16))\n"
          "f = jax.jit(lambda x, k: layers.depthwise_multi(x, k, jnp.zeros((0, 16)), 1, 1)[0])\n"
          "assert native_depthwise.TARGET not in f.lower(x, k).as_text()\n"
          "print(float(f(x, k)[0, 2, 4, 0]))\n")
  env = dict(os.environ, CXX="no-such-compiler", TEXTREC_CACHE=str(tmp_path),
             JAX_PLATFORMS="cpu")
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip() == "9.0"  # an interior output: all nine taps of ones
  warnings = [l for l in r.stderr.splitlines() if "no C++ compiler" in l]
  assert len(warnings) == 1, r.stderr
