"""RSEFPN, the neck of PP-OCRv4's DB detectors (PaddleOCR `ppocr/modeling/necks/db_fpn.py`).

Four backbone maps (strides 4, 8, 16, 32) -> one fused map [B, H/4, W/4, out_channels]:
each level goes through an `ins_conv` RSELayer (1x1) to `out_channels`, the top-down path adds
each level to the 2x nearest-upsampled coarser one, each sum goes through an `inp_conv`
RSELayer (3x3) to out_channels / 4, and the four results, upsampled to stride 4, are
concatenated coarsest first. Input sides must be multiples of 32 (as DB resizes them).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import layers
from textrec.models.pplcnetv3 import SELayer

# F.hardsigmoid's default slope, used by db_fpn's SEModule.
SE_HARDSIGMOID_SLOPE = 0.2


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """Nearest upsampling of x [B, H, W, C] by an integer factor -> [B, fH, fW, C]."""
  if factor == 1:
    return x
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class RSELayer(nn.Module):
  """`in_conv` (k x k, no bias) then `se_block`; with `shortcut` the SE output is added to
  the conv's: x [B, H, W, Cin] -> [B, H, W, features]."""

  features: int
  kernel_size: int
  shortcut: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.Conv2D(self.features, self.kernel_size, padding=self.kernel_size // 2,
                      use_bias=False, dtype=self.dtype, name="in_conv")(x)
    se = SELayer(hardsigmoid_slope=SE_HARDSIGMOID_SLOPE, dtype=self.dtype, name="se_block")(x)
    return x + se if self.shortcut else se


class RSEFPN(nn.Module):
  """feats: 4 maps [B, H/s, W/s, C_i], s = 4, 8, 16, 32 -> [B, H/4, W/4, out_channels]."""

  out_channels: int = 96
  shortcut: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, feats: Sequence[jax.Array]) -> jax.Array:
    if len(feats) != 4:
      raise ValueError(f"RSEFPN takes 4 feature maps, got {len(feats)}")
    ins = [RSELayer(self.out_channels, 1, self.shortcut, self.dtype, name=f"ins_conv_{i}")
           for i in range(4)]
    inp = [RSELayer(self.out_channels // 4, 3, self.shortcut, self.dtype, name=f"inp_conv_{i}")
           for i in range(4)]
    # Coarsest level first, as Paddle runs them: 1x1 RSE, top-down sums, 3x3 RSE, upsample.
    in_maps = {i: ins[i](feats[i]) for i in (3, 2, 1, 0)}
    outs = {3: in_maps[3]}
    for i in (2, 1, 0):
      outs[i] = in_maps[i] + upsample_nearest(outs[i + 1], 2)
    ps = [upsample_nearest(inp[i](outs[i]), 2 ** i) for i in (3, 2, 1, 0)]
    return jnp.concatenate(ps, axis=-1)
