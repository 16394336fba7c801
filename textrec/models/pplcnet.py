"""PP-LCNet, PaddleClas's classification backbone (`ppcls/arch/backbone/legendary_models/
pp_lcnet.py`), as PaddleX's orientation classifiers use it:

  PP-LCNet_x1_0_textline_ori  x [B, 80, 160, 3] -> [B, 2] over ("0_degree", "180_degree");
                              strides (2, (2,1), (2,1), (2,1), (2,1)): the width is kept
  PP-LCNet_x1_0_doc_ori       x [B, 224, 224, 3] -> [B, 4] over ("0", "90", "180", "270");
                              strides (2, 2, 2, 2, 2)

Both: scale 1.0, `conv1` (3x3) then blocks2..blocks6 of DepthwiseSeparable (dw ConvBN ->
hardswish -> optional SE -> 1x1 ConvBN -> hardswish), global average pool, `last_conv` (1x1 to
1280, no bias) -> hardswish -> dropout (Paddle's "downscale_in_infer": x (1 - p) at eval),
`fc`. x is NHWC RGB, ImageNet-normalised (textrec/pipelines/cls_preprocess.py). With
train=False the module returns softmax probabilities, with train=True the logits.

Variables mirror PaddleClas's state_dict: `conv1/{conv,bn}`, `blocks<s>_<i>/{dw_conv,se,
pw_conv}`, `last_conv`, `fc`. There is nothing to re-parameterise (deploy = training form).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import layers
from textrec.models.pplcnetv3 import STAGES, ConvBNLayer, SELayer, Stride, make_divisible
from textrec.models.registry import register_model

# Per stage: (kernel, in_c, out_c, use_se) per block, channels before scaling. The first
# block of blocks3..blocks6 takes the stride of `strides[1:]`, the others stride 1.
NET_CONFIG: dict[str, tuple[tuple[int, int, int, bool], ...]] = {
    "blocks2": ((3, 16, 32, False),),
    "blocks3": ((3, 32, 64, False), (3, 64, 64, False)),
    "blocks4": ((3, 64, 128, False), (3, 128, 128, False)),
    "blocks5": ((3, 128, 256, False), (5, 256, 256, False), (5, 256, 256, False),
                (5, 256, 256, False), (5, 256, 256, False), (5, 256, 256, False)),
    "blocks6": ((5, 256, 512, True), (5, 512, 512, True)),
}
CLASS_EXPAND = 1280
DROPOUT = 0.2
TEXTLINE_STRIDES: tuple[Stride, ...] = (2, (2, 1), (2, 1), (2, 1), (2, 1))
DOC_STRIDES: tuple[Stride, ...] = (2, 2, 2, 2, 2)
TEXTLINE_LABELS = ("0_degree", "180_degree")
DOC_LABELS = ("0", "90", "180", "270")


def _divisible(v: float) -> int:
  return make_divisible(v, divisor=8)


class DepthwiseSeparable(nn.Module):
  """`dw_conv` (k x k depthwise, stride) -> optional `se` -> `pw_conv` (1x1), each ConvBN +
  hardswish: x [B, H, W, Cin] -> [B, H/sh, W/sw, features]."""

  features: int
  strides: Stride
  dw_size: int
  use_se: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin = x.shape[-1]
    x = layers.hardswish(ConvBNLayer(cin, self.dw_size, self.strides, groups=cin,
                                     dtype=self.dtype, name="dw_conv")(x, train))
    if self.use_se:
      x = SELayer(dtype=self.dtype, name="se")(x)
    return layers.hardswish(ConvBNLayer(self.features, 1, dtype=self.dtype, name="pw_conv")(
        x, train))


class PPLCNet(nn.Module):
  """x [B, H, W, 3] -> probabilities [B, num_classes] (train=False) or logits (train=True).

  `strides`: conv1's stride, then the first stride of blocks3..blocks6 (PaddleClas's
  `stride_list`). Dropout at train time draws from the "dropout" rng.
  """

  num_classes: int
  strides: Sequence[Stride] = DOC_STRIDES
  scale: float = 1.0
  class_expand: int = CLASS_EXPAND
  dropout: float = DROPOUT
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if len(self.strides) != 5:
      raise ValueError(f"PPLCNet strides: expected 5 (conv1, blocks3..blocks6), got "
                       f"{self.strides}")
    s = self.scale
    x = layers.hardswish(ConvBNLayer(_divisible(16 * s), 3, self.strides[0], dtype=self.dtype,
                                     name="conv1")(x, train))
    first = dict(zip(STAGES[1:], self.strides[1:]))
    for stage in STAGES:
      for i, (k, _, out_c, se) in enumerate(NET_CONFIG[stage]):
        stride = first.get(stage, 1) if i == 0 else 1
        stride = tuple(stride) if isinstance(stride, (list, tuple)) else stride
        x = DepthwiseSeparable(_divisible(out_c * s), stride, k, se, self.dtype,
                               name=f"{stage}_{i}")(x, train)
    x = jnp.mean(x, axis=(1, 2), keepdims=True)
    x = layers.Conv2D(self.class_expand, 1, use_bias=False, dtype=self.dtype,
                      name="last_conv")(x)
    x = layers.hardswish(x)[:, 0, 0]
    if train:  # downscale_in_infer: drop without rescaling while training
      keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.dropout, x.shape)
      x = jnp.where(keep, x, 0.0)
    else:
      x = x * (1.0 - self.dropout)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
    return logits if train else jax.nn.softmax(logits, axis=-1)


def _dtype(dtype: Any) -> Any:
  return jnp.dtype(dtype) if isinstance(dtype, str) else dtype


@register_model("PP-LCNet_x1_0_textline_ori", kind="cls")
def pplcnet_x1_0_textline_ori(deploy: bool = False, dtype: Any = jnp.float32) -> PPLCNet:
  """PP-LCNet x1.0, strides (2, (2,1) x 4), over ("0_degree", "180_degree"); input 80 x 160."""
  del deploy  # nothing to fuse
  return PPLCNet(num_classes=len(TEXTLINE_LABELS), strides=TEXTLINE_STRIDES, dtype=_dtype(dtype))


@register_model("PP-LCNet_x1_0_doc_ori", kind="cls")
def pplcnet_x1_0_doc_ori(deploy: bool = False, dtype: Any = jnp.float32) -> PPLCNet:
  """PP-LCNet x1.0 over ("0", "90", "180", "270"); input 224 x 224."""
  del deploy  # nothing to fuse
  return PPLCNet(num_classes=len(DOC_LABELS), strides=DOC_STRIDES, dtype=_dtype(dtype))
