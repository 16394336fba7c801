"""PPHGNet_small, the PP-OCRv4_server_rec backbone (PaddleOCR `rec_hgnet.py`), NHWC.

Rec strides: stem /2, then stages (2,1), (1,2), (2,1), (2,1): [B, 48, 320, 3] -> [B, 3, 80, 1024].
Pooling differs with the mode, as in PaddleOCR: eval `avg_pool2d([3, 2])` (T = W/8),
training `adaptive_avg_pool2d([1, 40])`.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models.layers import Conv2D, batch_norm
from textrec.models.pplcnetv3 import rec_pool

# in, mid, out channels, blocks, downsample, stride  (PaddleOCR's stage_config_rec)
STAGES_SMALL_REC = (
    (128, 128, 256, 1, True, (2, 1)),
    (256, 160, 512, 1, True, (1, 2)),
    (512, 192, 768, 2, True, (2, 1)),
    (768, 224, 1024, 1, True, (2, 1)),
)


class ConvBNAct(nn.Module):
  """Conv (no bias, 'same' padding) + BN + optional ReLU. Names: conv, bn."""

  features: int
  kernel_size: int = 3
  strides: int | Sequence[int] = 1
  groups: int = 1
  use_act: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = Conv2D(self.features, self.kernel_size, self.strides, (self.kernel_size - 1) // 2,
               groups=self.groups, use_bias=False, dtype=self.dtype, name="conv")(x)
    x = batch_norm("bn", train, self.dtype)(x)
    return nn.relu(x) if self.use_act else x


class ESEModule(nn.Module):
  """Effective squeeze-excitation: x * sigmoid(conv1x1(mean_hw(x))). Name: conv."""

  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = Conv2D(x.shape[-1], 1, dtype=self.dtype, name="conv")(s)
    return x * jax.nn.sigmoid(s)


class HGBlock(nn.Module):
  """layer_num 3x3 ConvBNAct, concat with the input, 1x1 aggregation, ESE, opt. residual."""

  mid_channels: int
  out_channels: int
  layer_num: int
  identity: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    outs = [x]
    y = x
    for i in range(self.layer_num):
      y = ConvBNAct(self.mid_channels, 3, dtype=self.dtype, name=f"layers_{i}")(y, train)
      outs.append(y)
    y = jnp.concatenate(outs, axis=-1)
    y = ConvBNAct(self.out_channels, 1, dtype=self.dtype, name="aggregation_conv")(y, train)
    y = ESEModule(dtype=self.dtype, name="att")(y)
    return y + x if self.identity else y


class HGStage(nn.Module):
  """Optional depthwise 3x3 downsample (BN, no act) then `block_num` HGBlocks."""

  mid_channels: int
  out_channels: int
  block_num: int
  layer_num: int
  downsample: bool = True
  stride: Sequence[int] = (2, 1)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.downsample:
      x = ConvBNAct(x.shape[-1], 3, tuple(self.stride), groups=x.shape[-1], use_act=False,
                    dtype=self.dtype, name="downsample")(x, train)
    for i in range(self.block_num):
      x = HGBlock(self.mid_channels, self.out_channels, self.layer_num, identity=i > 0,
                  dtype=self.dtype, name=f"blocks_{i}")(x, train)
    return x


class PPHGNet(nn.Module):
  """[B, H, W, 3] -> [B, 1, T, 1024] (eval: T = W/8 with H = 48; training: T = 40)."""

  stem_channels: Sequence[int] = (64, 64, 128)
  stages: Sequence[Sequence[Any]] = STAGES_SMALL_REC
  layer_num: int = 6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i, c in enumerate(self.stem_channels):
      x = ConvBNAct(c, 3, 2 if i == 0 else 1, dtype=self.dtype, name=f"stem_{i}")(x, train)
    for i, (_, mid, out, blocks, down, stride) in enumerate(self.stages):
      x = HGStage(mid, out, blocks, self.layer_num, down, stride, dtype=self.dtype,
                  name=f"stages_{i}")(x, train)
    return rec_pool(x, train)

  @property
  def out_channels(self) -> int:
    return self.stages[-1][2]
