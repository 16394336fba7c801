"""PPHGNetV2_B4 in text-recognition mode, the PP-OCRv5_server_rec backbone (PaddleOCR
`rec_pphgnetv2.py` with `text_rec=True`), NHWC.

No LearnableAffineBlocks (B4 is built with use_lab=False), ReLU activations, BN eps 1e-5.
Shapes at 48x320: stem [B, 24, 160, 48] (stem3 has stride 1 in text_rec mode), then stages
with strides (2,1), (1,2), (2,1), (2,1): 12x160 -> 12x80 -> 6x80 -> 3x80 (2048 channels).
Pooling as PaddleOCR: eval `avg_pool2d([3, 2])` (T = W/8), training
`adaptive_avg_pool2d([1, 40])`.

PaddleOCR's module also creates the ImageNet classification `last_conv` and `fc`; its
text_rec forward never calls them, so they are not variables here (the weight loader skips
them: textrec.weights.paddle.UNUSED_IN_RECOGNITION).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models.pphgnet import ConvBNAct
from textrec.models.pplcnetv3 import rec_pool

# in, mid, out channels, blocks, light block, kernel, layers per block, downsample stride
# (PaddleOCR's PPHGNetV2_B4 stage_config_rec; every stage downsamples).
STAGES_B4_REC = (
    (48, 48, 128, 1, False, 3, 6, (2, 1)),
    (128, 96, 512, 1, False, 3, 6, (1, 2)),
    (512, 192, 1024, 3, True, 5, 6, (2, 1)),
    (1024, 384, 2048, 1, True, 5, 6, (2, 1)),
)


def pad_same(x: jax.Array, window: Sequence[int], value: float = 0.0) -> jax.Array:
  """Paddle `padding="SAME"` at stride 1 for x [B, H, W, C]: k - 1 in total per axis, the
  smaller half before (a 2x2 window pads 0 before, 1 after: bottom / right)."""
  pads = [(0, 0)]
  for k in window:
    total = k - 1
    pads.append((total // 2, total - total // 2))
  return jnp.pad(x, pads + [(0, 0)], constant_values=value)


def max_pool_same(x: jax.Array, window: int = 2) -> jax.Array:
  """Paddle MaxPool2D(window, stride 1, padding="SAME"): padded cells never win the max."""
  xp = pad_same(x, (window, window), -jnp.inf)
  h, w = x.shape[1], x.shape[2]
  # lax.slice, not indexing: with a symbolic h / w (ONNX export) indexing becomes a gather
  taps = [jax.lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + h, j + w, xp.shape[3]))
          for i in range(window) for j in range(window)]
  out = taps[0]
  for t in taps[1:]:
    out = jnp.maximum(out, t)
  return out


class StemBlock(nn.Module):
  """stem1 3x3 s2 -> [maxpool 2 SAME, stem2b(stem2a(.)) 2x2 SAME] concat -> stem3 3x3
  (stride 1 with text_rec, else 2) -> stem4 1x1. Names: stem1, stem2a, stem2b, stem3, stem4."""

  mid_channels: int = 32
  out_channels: int = 48
  text_rec: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    mid = self.mid_channels
    x = ConvBNAct(mid, 3, 2, dtype=self.dtype, name="stem1")(x, train)
    # A 2x2 ConvBNAct pads (k - 1) // 2 = 0 itself; pad_same adds Paddle's SAME padding.
    x2 = ConvBNAct(mid // 2, 2, dtype=self.dtype, name="stem2a")(pad_same(x, (2, 2)), train)
    x2 = ConvBNAct(mid, 2, dtype=self.dtype, name="stem2b")(pad_same(x2, (2, 2)), train)
    x = jnp.concatenate([max_pool_same(x, 2), x2], axis=-1)
    x = ConvBNAct(mid, 3, 1 if self.text_rec else 2, dtype=self.dtype, name="stem3")(x, train)
    return ConvBNAct(self.out_channels, 1, dtype=self.dtype, name="stem4")(x, train)


class LightConvBNAct(nn.Module):
  """1x1 ConvBN (no activation) then depthwise kxk ConvBN + ReLU. Names: conv1, conv2."""

  features: int
  kernel_size: int
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvBNAct(self.features, 1, use_act=False, dtype=self.dtype, name="conv1")(x, train)
    return ConvBNAct(self.features, self.kernel_size, groups=self.features, dtype=self.dtype,
                     name="conv2")(x, train)


class HGV2Block(nn.Module):
  """`layer_num` layers chained, concat([x, every layer's output]) -> 1x1 to out/2 -> 1x1 to
  out (both ReLU), + x when `identity`. Names: layers_<i>, aggregation_squeeze_conv,
  aggregation_excitation_conv."""

  mid_channels: int
  out_channels: int
  kernel_size: int = 3
  layer_num: int = 6
  light_block: bool = False
  identity: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    outs, y = [x], x
    for i in range(self.layer_num):
      if self.light_block:
        layer = LightConvBNAct(self.mid_channels, self.kernel_size, dtype=self.dtype,
                               name=f"layers_{i}")
      else:
        layer = ConvBNAct(self.mid_channels, self.kernel_size, dtype=self.dtype,
                          name=f"layers_{i}")
      y = layer(y, train)
      outs.append(y)
    y = jnp.concatenate(outs, axis=-1)
    y = ConvBNAct(self.out_channels // 2, 1, dtype=self.dtype,
                  name="aggregation_squeeze_conv")(y, train)
    y = ConvBNAct(self.out_channels, 1, dtype=self.dtype,
                  name="aggregation_excitation_conv")(y, train)
    return y + x if self.identity else y


class HGV2Stage(nn.Module):
  """Depthwise 3x3 downsample with the stage's stride (BN, no activation), then `block_num`
  HGV2Blocks, residual on all but the first. Names: downsample, blocks_<i>."""

  mid_channels: int
  out_channels: int
  block_num: int
  light_block: bool
  kernel_size: int
  layer_num: int
  stride: Sequence[int] = (2, 1)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    x = ConvBNAct(c, 3, tuple(self.stride), groups=c, use_act=False, dtype=self.dtype,
                  name="downsample")(x, train)
    for i in range(self.block_num):
      x = HGV2Block(self.mid_channels, self.out_channels, self.kernel_size, self.layer_num,
                    self.light_block, identity=i > 0, dtype=self.dtype,
                    name=f"blocks_{i}")(x, train)
    return x


class PPHGNetV2(nn.Module):
  """[B, H, W, 3] -> [B, 1, T, 2048] (eval: T = W/8 with H = 48; training: T = 40).
  Names: stem, stages_<i> (Paddle `backbone.stem.*`, `backbone.stages.<i>.*`)."""

  stem_channels: Sequence[int] = (32, 48)  # mid, out (Paddle's [3, 32, 48] without the input)
  stages: Sequence[Sequence[Any]] = STAGES_B4_REC
  text_rec: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    mid, out = self.stem_channels
    x = StemBlock(mid, out, self.text_rec, dtype=self.dtype, name="stem")(x, train)
    for i, (_, mid_c, out_c, blocks, light, k, layers, stride) in enumerate(self.stages):
      x = HGV2Stage(mid_c, out_c, blocks, light, k, layers, stride, dtype=self.dtype,
                    name=f"stages_{i}")(x, train)
    return rec_pool(x, train)

  @property
  def out_channels(self) -> int:
    return self.stages[-1][2]
