"""scripts/bench_kernels.py's FLOP accounting against XLA's cost analysis."""
import pathlib
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))

import bench_kernels  # noqa: E402  pylint: disable=g-import-not-at-top

from textrec.models import layers  # noqa: E402
from textrec.runtime import settings


class _Toy(nn.Module):
  """A 3x3 conv (no padding, stride 2), a 1x1 conv (a matmul on the CPU) and a 1x3 conv."""

  @nn.compact
  def __call__(self, x, train=False):
    x = layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = layers.Conv2D(16, 1, use_bias=False)(x)
    return {"ctc_logits": layers.Conv2D(4, (1, 3), use_bias=False)(x)}


def test_dense_ops_and_gflop_match_xla_cost_analysis():
  module = _Toy()
  variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 48, 320, 3)))
  with settings.conv_impl("fast"):
    ops = bench_kernels.dense_ops(module, variables, batch=2)
    x = jnp.zeros((2, 48, 320, 3), jnp.float32)
    cost = jax.jit(lambda v, x: module.apply(v, x)["ctc_logits"]).lower(
        variables, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  kinds = sorted(op[0] for op in ops)
  assert kinds == ["conv", "conv", "dot"], ops
  # No padding anywhere: every product counted is one XLA counts.
  total = sum(bench_kernels.gflop(op) * n for op, n in ops.items())
  assert abs(total - cost["flops"] / 1e9) < 1e-3 * total, (total, cost["flops"])


class _DwToy(nn.Module):
  """A depthwise 3x3 conv (stride (2, 1), no padding) after a 1x1 conv."""

  @nn.compact
  def __call__(self, x, train=False):
    x = layers.Conv2D(16, 1, use_bias=False)(x)
    return {"ctc_logits": layers.Conv2D(16, 3, strides=(2, 1), groups=16, use_bias=False)(x)}


def test_depthwise_ops_find_the_native_convs_and_count_their_flops():
  from textrec.runtime import native_depthwise  # pylint: disable=g-import-not-at-top

  if not native_depthwise.available():
    import pytest  # pylint: disable=g-import-not-at-top
    pytest.skip("native depthwise conv not in use here")
  module = _DwToy()
  variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 48, 320, 3)))
  with settings.conv_impl("fast"):
    ops = bench_kernels.depthwise_ops(module, variables, batch=2)
  assert dict(ops) == {("dw", (2, 48, 320, 16), (3, 3), (2, 1), (0, 0)): 1}
  op, = ops
  with settings.conv_impl("xla"):  # the same conv as XLA's grouped convolution
    k = variables["params"]["Conv2D_1"]["kernel"]
    x = jnp.zeros((2, 48, 320, 16), jnp.float32)
    cost = jax.jit(lambda x: layers.conv2d(x, k, (2, 1), 0, 16)).lower(x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  assert abs(bench_kernels.gflop(op) - cost["flops"] / 1e9) < 1e-3 * bench_kernels.gflop(op)
