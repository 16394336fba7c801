"""PPLCNetV3 backbone (recognition variant), as PaddleOCR's `rec_lcnetv3.py`.

NHWC in, NHWC out: x [B, H, W, 3] -> [B, 1, T, C] with C = make_divisible(512 * scale)
(480 at scale 0.95). Eval pools with a [3, 2] average window (T = W / 8); training pools
adaptively to [1, 40], as Paddle does.

Module names mirror Paddle's state_dict: `conv1/{conv,bn}`, `blocks2_0/dw_conv/conv_kxk_0/conv`,
`.../identity` (BatchNorm), `.../conv_1x1`, `.../lab`, `.../act/lab`, `.../se/{conv1,conv2}`.
With `deploy=True` every LearnableRepLayer holds a single `reparam_conv` (kernel + bias)
instead of its branches; `textrec.models.reparam.deploy_variables` converts the variables.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import layers

Stride = int | tuple[int, int]

# Per stage: (kernel, in_c, out_c, stride, use_se), channels before scaling.
NET_CONFIG_REC: dict[str, tuple[tuple[int, int, int, Stride, bool], ...]] = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 1, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, (2, 1), False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, (1, 2), False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
                (5, 256, 256, 1, False), (5, 256, 256, 1, False)),
    "blocks6": ((5, 256, 512, (2, 1), True), (5, 512, 512, 1, True),
                (5, 512, 512, (2, 1), False), (5, 512, 512, 1, False)),
}


def make_divisible(v: float, divisor: int = 16, min_value: int | None = None) -> int:
  min_value = divisor if min_value is None else min_value
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


# Paddle compares the (int or tuple) stride with Python `==`: a tuple stride such as (2, 1)
# is never "1" (no identity branch) and never "2" (the activation is kept).
def _is_int(stride: Stride, value: int) -> bool:
  return not isinstance(stride, (tuple, list)) and stride == value


def _padding(kernel_size: int) -> int:
  return (kernel_size - 1) // 2


class LearnableAffineBlock(nn.Module):
  """y = scale * x + bias with scalar (shape [1]) parameters."""

  scale_value: float = 1.0
  bias_value: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.constant(self.scale_value), (1,))
    bias = self.param("bias", nn.initializers.constant(self.bias_value), (1,))
    return x * scale.astype(x.dtype) + bias.astype(x.dtype)


class Act(nn.Module):
  """Hardswish (or ReLU) followed by a LearnableAffineBlock named `lab`."""

  act: str = "hswish"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.act == "hswish":
      x = layers.hardswish(x)
    elif self.act == "relu":
      x = nn.relu(x)
    else:
      raise ValueError(f"Act: unknown activation {self.act!r} (hswish | relu)")
    return LearnableAffineBlock(name="lab")(x)


class _Kernel(nn.Module):
  """Holds a conv kernel `kernel` [kh, kw, Cin/groups, Cout]; returns it."""

  @nn.compact
  def __call__(self, shape: tuple[int, ...]) -> jax.Array:
    return self.param("kernel", nn.initializers.he_normal(), shape)


class ConvBNLayer(nn.Module):
  """Conv (no bias, padding (k-1)//2) + BatchNorm: `conv/kernel`, `bn`.

  Besides `__call__`, `kernel(cin)` and `norm(y, train)` let LearnableRepLayer run several
  branches' convolutions as one (layers.multi_conv2d).
  """

  features: int
  kernel_size: int
  strides: Stride = 1
  groups: int = 1
  dtype: Any = None

  def setup(self):
    self.conv = _Kernel()
    self.bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5, dtype=self.dtype, use_fast_variance=False)

  def kernel(self, cin: int) -> jax.Array:
    if cin % self.groups:
      raise ValueError(f"{self.name}: {cin} input channels not divisible by groups={self.groups}")
    k = self.kernel_size
    return self.conv((k, k, cin // self.groups, self.features))

  def norm(self, y: jax.Array, train: bool = False) -> jax.Array:
    return self.bn(y, use_running_average=not train)

  def conv_dtype(self, x: jax.Array) -> Any:
    return self.dtype or x.dtype

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    dt = self.conv_dtype(x)
    y = layers.conv2d(x.astype(dt), self.kernel(x.shape[-1]).astype(dt), self.strides,
                      _padding(self.kernel_size), self.groups)
    return self.norm(y, train)


class LearnableRepLayer(nn.Module):
  """Sum of `num_conv_branches` kxk ConvBN branches, a 1x1 ConvBN branch (k > 1) and an
  identity BatchNorm (in == out channels and int stride 1), then `lab`, then `act` (unless
  the stride is the int 2). `deploy=True`: one `reparam_conv` replaces the branches.
  """

  features: int
  kernel_size: int
  strides: Stride = 1
  groups: int = 1
  num_conv_branches: int = 1
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.deploy:
      out = layers.Conv2D(self.features, self.kernel_size, self.strides,
                          _padding(self.kernel_size), groups=self.groups, dtype=self.dtype,
                          name="reparam_conv")(x)
    else:
      # Summed in Paddle's order: identity, 1x1, then the kxk branches.
      terms = []
      if self.features == x.shape[-1] and _is_int(self.strides, 1):
        terms.append(layers.batch_norm("identity", train, self.dtype)(x))
      if self.kernel_size > 1:
        terms.append(ConvBNLayer(self.features, 1, self.strides, self.groups, self.dtype,
                                 name="conv_1x1")(x, train))
      branches = [ConvBNLayer(self.features, self.kernel_size, self.strides, self.groups,
                              self.dtype, name=f"conv_kxk_{i}")
                  for i in range(self.num_conv_branches)]
      dt = self.dtype or x.dtype
      ys = layers.multi_conv2d(x.astype(dt), [b.kernel(x.shape[-1]).astype(dt) for b in branches],
                               self.strides, _padding(self.kernel_size), self.groups)
      terms.extend(b.norm(y, train) for b, y in zip(branches, ys))
      out = terms[0]
      for t in terms[1:]:
        out = out + t
    out = LearnableAffineBlock(name="lab")(out)
    if not _is_int(self.strides, 2):
      out = Act(name="act")(out)
    return out


class SELayer(nn.Module):
  """Squeeze-excitation: mean over H, W -> 1x1 conv (C/r) -> ReLU -> 1x1 conv -> hardsigmoid."""

  reduction: int = 4
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = layers.Conv2D(c // self.reduction, 1, dtype=self.dtype, name="conv1")(s)
    s = nn.relu(s)
    s = layers.Conv2D(c, 1, dtype=self.dtype, name="conv2")(s)
    return x * layers.paddle_hardsigmoid(s)


class LCNetV3Block(nn.Module):
  """Depthwise LearnableRepLayer (`dw_conv`) -> optional `se` -> pointwise (`pw_conv`)."""

  features: int
  strides: Stride
  dw_size: int
  use_se: bool = False
  conv_kxk_num: int = 4
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin = x.shape[-1]
    x = LearnableRepLayer(cin, self.dw_size, self.strides, groups=cin,
                          num_conv_branches=self.conv_kxk_num, deploy=self.deploy,
                          dtype=self.dtype, name="dw_conv")(x, train)
    if self.use_se:
      x = SELayer(dtype=self.dtype, name="se")(x)
    return LearnableRepLayer(self.features, 1, 1, num_conv_branches=self.conv_kxk_num,
                             deploy=self.deploy, dtype=self.dtype, name="pw_conv")(x, train)


def adaptive_avg_pool(x: jax.Array, out_hw: Sequence[int]) -> jax.Array:
  """Paddle/PyTorch adaptive average pooling of x [B, H, W, C] to [B, oh, ow, C]."""
  def bins(n: int, m: int) -> list[tuple[int, int]]:
    return [((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)]

  h, w = x.shape[1], x.shape[2]
  oh, ow = out_hw
  if h % oh == 0 and w % ow == 0:
    b, _, _, c = x.shape
    return x.reshape(b, oh, h // oh, ow, w // ow, c).mean(axis=(2, 4))
  rows = [x[:, h0:h1].mean(axis=1, keepdims=True) for h0, h1 in bins(h, oh)]
  x = jnp.concatenate(rows, axis=1)
  cols = [x[:, :, w0:w1].mean(axis=2, keepdims=True) for w0, w1 in bins(w, ow)]
  return jnp.concatenate(cols, axis=2)


def avg_pool(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """Non-overlapping average pooling (stride = window, no padding, floor), x [B, H, W, C]."""
  b, h, w, c = x.shape
  kh, kw = window
  ho, wo = h // kh, w // kw
  if ho == 0 or wo == 0:
    raise ValueError(f"avg_pool {window} needs a feature map of at least that size, got {h}x{w}")
  x = x[:, :ho * kh, :wo * kw]
  return x.reshape(b, ho, kh, wo, kw, c).mean(axis=(2, 4))


class PPLCNetV3(nn.Module):
  """x [B, H, W, 3] -> [B, 1, T, C]: `conv1` (ConvBN, stride 2) then `blocks2`..`blocks6`."""

  scale: float = 0.95
  conv_kxk_num: int = 4
  net_config: Any = None  # None = NET_CONFIG_REC
  train_pool_hw: tuple[int, int] = (1, 40)
  eval_pool: tuple[int, int] = (3, 2)
  deploy: bool = False
  dtype: Any = None

  @property
  def out_channels(self) -> int:
    cfg = self.net_config or NET_CONFIG_REC
    return make_divisible(cfg["blocks6"][-1][2] * self.scale)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cfg = self.net_config or NET_CONFIG_REC
    x = ConvBNLayer(make_divisible(16 * self.scale), 3, 2, dtype=self.dtype, name="conv1")(
        x, train)
    for stage in ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6"):
      for i, (k, _, out_c, s, se) in enumerate(cfg[stage]):
        s = tuple(s) if isinstance(s, (list, tuple)) else s
        x = LCNetV3Block(make_divisible(out_c * self.scale), s, k, se, self.conv_kxk_num,
                         self.deploy, self.dtype, name=f"{stage}_{i}")(x, train)
    if train:
      return adaptive_avg_pool(x, self.train_pool_hw)
    return avg_pool(x, self.eval_pool)
