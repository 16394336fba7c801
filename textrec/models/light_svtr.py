"""LightSVTR sequence neck of PP-OCRv6 small / medium (PaddleOCR `necks/rnn.py`
EncoderWithLightSVTR, SequenceEncoder "lightsvtr"), NHWC.

x [B, 1, T, C] -> [B, T, dims]:
  skip = `skip_conv` (1x1 ConvBN + Swish)(x); z = `conv_reduce` (1x1 ConvBN + Swish)(x);
  z = z + Swish(BN `local_conv_1`(dw conv `local_conv_0` [1, 7], pad [0, 3], no bias)(z));
  `depth` SVTR blocks (global attention, 8 heads, qkv bias, pre-norm, LN eps 1e-5, Swish MLP);
  LayerNorm `norm` (eps 1e-6); + skip; Im2Seq.
Names: `encoder/{conv_reduce,local_conv_0,local_conv_1,svtr_block_<i>,norm,skip_conv}`.
`use_guide` stops gradients into the input (nothing in eval).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from textrec.models import layers
from textrec.models.svtr_neck import Block, ConvBNAct, im2seq


class EncoderWithLightSVTR(nn.Module):
  """x [B, H, W, C] -> [B, H, W, dims]."""

  dims: int = 120
  depth: int = 2
  mlp_ratio: float = 2.0
  local_kernel: int = 7
  num_heads: int = 8
  use_guide: bool = False
  drop_rate: float = 0.1
  attn_drop_rate: float = 0.1
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.use_guide:
      x = jax.lax.stop_gradient(x)
    d, k = self.dims, self.local_kernel
    skip = ConvBNAct(d, 1, act="swish", dtype=self.dtype, name="skip_conv")(x, train)
    z = ConvBNAct(d, 1, act="swish", dtype=self.dtype, name="conv_reduce")(x, train)
    loc = layers.Conv2D(d, (1, k), padding=(0, k // 2), groups=d, use_bias=False,
                        dtype=self.dtype, name="local_conv_0")(z)
    z = z + layers.swish(layers.batch_norm("local_conv_1", train, self.dtype)(loc))
    b, h, w, _ = z.shape
    z = z.reshape(b, h * w, d)
    for i in range(self.depth):
      z = Block(self.num_heads, self.mlp_ratio, True, None, self.drop_rate, self.attn_drop_rate,
                act="swish", epsilon=1e-5, prenorm=False, dtype=self.dtype,
                name=f"svtr_block_{i}")(z, train)
    z = layers.layer_norm(1e-6, "norm", self.dtype)(z)
    return z.reshape(b, h, w, d) + skip


class LightSVTRSequenceEncoder(nn.Module):
  """`encoder` then Im2Seq: x [B, 1, T, C] -> [B, T, dims]. `encoder_kwargs`:
  EncoderWithLightSVTR's fields."""

  encoder_kwargs: Any = None
  dtype: Any = None

  @property
  def out_channels(self) -> int:
    return dict(self.encoder_kwargs or {}).get("dims", EncoderWithLightSVTR.dims)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    kw = dict(self.encoder_kwargs or {})
    return im2seq(EncoderWithLightSVTR(**kw, dtype=self.dtype, name="encoder")(x, train))
