"""ch_ppocr_mobile_v2.0_cls, PaddleOCR's text-line orientation classifier
(`configs/cls/cls_mv3.yml`): MobileNetV3 small x0.35 (`ppocr/modeling/backbones/
rec_mobilenet_v3.py`, strides (2, 1) so the width is kept) + ClsHead (global average pool,
Linear, softmax over the labels ('0', '180')).

`module.apply(variables, x, train=False)` with x f32[B, 48, 192, 3] (NHWC, normalised as
PaddleOCR's cls preprocessing makes it) returns probabilities [B, 2]; with train=True the
logits [B, 2]. Variables mirror PaddleOCR's state_dict: `backbone/conv1/{conv,bn}`,
`backbone/blocks_<i>/{expand_conv,bottleneck_conv,mid_se,linear_conv}`, `backbone/conv2`,
`head/fc`. There is nothing to re-parameterise (deploy = training form).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import layers
from textrec.models.pplcnetv3 import ConvBNLayer, SELayer, Stride, make_divisible
from textrec.models.registry import register_model

LABELS = ("0", "180")
# MobileNetV3 small: (kernel, expansion, out_c, use_se, activation, stride), before scaling.
SMALL_CONFIG: tuple[tuple[int, int, int, bool, str, Stride], ...] = (
    (3, 16, 16, True, "relu", (2, 1)),
    (3, 72, 24, False, "relu", (2, 1)),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", (2, 1)),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", (2, 1)),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)
SMALL_SQUEEZE = 576
# rec_mobilenet_v3's SEModule: F.hardsigmoid (slope 0.2), channels // 4 without rounding.
SE_HARDSIGMOID_SLOPE = 0.2


def _act(x: jax.Array, act: str | None) -> jax.Array:
  if act is None:
    return x
  if act == "relu":
    return nn.relu(x)
  if act == "hardswish":
    return layers.hardswish(x)
  raise ValueError(f"unknown activation {act!r} (relu | hardswish)")


def _divisible8(v: float) -> int:
  return make_divisible(v, divisor=8)


class ResidualUnit(nn.Module):
  """`expand_conv` (1x1) -> `bottleneck_conv` (k x k depthwise) -> `mid_se` -> `linear_conv`
  (1x1, no activation), plus the input when the stride is the int 1 and in == out channels:
  x [B, H, W, Cin] -> [B, H/sh, W/sw, features]."""

  mid_channels: int
  features: int
  kernel_size: int
  strides: Stride
  use_se: bool
  act: str
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin, mid = x.shape[-1], self.mid_channels
    y = _act(ConvBNLayer(mid, 1, dtype=self.dtype, name="expand_conv")(x, train), self.act)
    y = ConvBNLayer(mid, self.kernel_size, self.strides, groups=mid, dtype=self.dtype,
                    name="bottleneck_conv")(y, train)
    y = _act(y, self.act)
    if self.use_se:
      y = SELayer(hardsigmoid_slope=SE_HARDSIGMOID_SLOPE, dtype=self.dtype, name="mid_se")(y)
    y = ConvBNLayer(self.features, 1, dtype=self.dtype, name="linear_conv")(y, train)
    if self.strides == 1 and cin == self.features:
      y = x + y
    return y


class MobileNetV3(nn.Module):
  """x [B, H, W, 3] -> [B, H/32 (floor, after the 2x2 max pool), W/4, C] with
  C = make_divisible(576 * scale, 8) (200 at scale 0.35)."""

  scale: float = 0.35
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    s = self.scale
    x = _act(ConvBNLayer(_divisible8(16 * s), 3, 2, dtype=self.dtype, name="conv1")(x, train),
             "hardswish")
    for i, (k, exp, c, se, act, stride) in enumerate(SMALL_CONFIG):
      x = ResidualUnit(_divisible8(s * exp), _divisible8(s * c), k, stride, se, act, self.dtype,
                       name=f"blocks_{i}")(x, train)
    x = _act(ConvBNLayer(_divisible8(s * SMALL_SQUEEZE), 1, dtype=self.dtype, name="conv2")(
        x, train), "hardswish")
    b, h, w, c = x.shape  # MaxPool2D(2, 2), floor
    x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c)
    return x.max(axis=(2, 4))


class ClsHead(nn.Module):
  """x [B, H, W, C] -> mean over H, W -> `fc` -> logits [B, num_classes] (train) or their
  softmax (eval)."""

  num_classes: int = len(LABELS)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(jnp.mean(x, axis=(1, 2)))
    return logits if train else jax.nn.softmax(logits, axis=-1)


class TextlineClassifier(nn.Module):
  """MobileNetV3 small backbone + ClsHead: x [B, 48, 192, 3] -> [B, 2]."""

  scale: float = 0.35
  num_classes: int = len(LABELS)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    feat = MobileNetV3(self.scale, self.dtype, name="backbone")(x, train)
    return ClsHead(self.num_classes, self.dtype, name="head")(feat, train)


@register_model("ch_ppocr_mobile_v2.0_cls", kind="cls")
def ch_ppocr_mobile_v2_cls(deploy: bool = False, dtype: Any = jnp.float32
                           ) -> TextlineClassifier:
  """MobileNetV3 small x0.35 + ClsHead over ('0', '180')."""
  del deploy  # nothing to fuse
  return TextlineClassifier(scale=0.35, num_classes=len(LABELS),
                            dtype=jnp.dtype(dtype) if isinstance(dtype, str) else dtype)
