"""DBHead (PaddleOCR `ppocr/modeling/heads/det_db_head.py`), the head of the DB detectors.

x [B, H/4, W/4, C] -> probability maps at the input resolution [B, H, W, 1]:
`binarize` (the shrink map) always; in training also `thresh` and the approximate binary map
1 / (1 + exp(-k (shrink - thresh))), concatenated on the channel axis ([B, H, W, 3]).
Inference exports (the official ONNX) hold only `binarize`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import layers


class ConvTransposeNoOverlap(nn.Module):
  """Paddle Conv2DTranspose with kernel_size == stride and no padding: every input pixel
  becomes its own k x k output block, x [B, H, W, Cin] -> [B, kH, kW, features].

  `kernel` is [k, k, features, Cin] (Paddle's [Cin, Cout, k, k] transposed (2, 3, 1, 0), the
  layout `textrec.weights.paddle` gives every 4-d weight), `bias` [features].
  """

  features: int
  kernel_size: int = 2
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, (b, h, w, cin) = self.kernel_size, x.shape
    kernel = self.param("kernel", nn.initializers.he_normal(), (k, k, self.features, cin))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    dt = self.dtype or x.dtype
    y = jnp.einsum("bhwc,pqoc->bhpwqo", x.astype(dt), kernel.astype(dt))
    return y.reshape(b, h * k, w * k, self.features) + bias.astype(dt)


class Head(nn.Module):
  """`conv1` (3x3, no bias) -> `conv_bn1` -> ReLU -> `conv2` (2x2 transposed, stride 2) ->
  `conv_bn2` -> ReLU -> `conv3` (2x2 transposed, 1 channel) -> sigmoid:
  x [B, h, w, C] -> [B, 4h, 4w, 1]."""

  kernel_list: tuple[int, int, int] = (3, 2, 2)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    k1, k2, k3 = self.kernel_list
    c = x.shape[-1] // 4
    x = layers.Conv2D(c, k1, padding=k1 // 2, use_bias=False, dtype=self.dtype,
                      name="conv1")(x)
    x = nn.relu(layers.batch_norm("conv_bn1", train, self.dtype)(x))
    x = ConvTransposeNoOverlap(c, k2, self.dtype, name="conv2")(x)
    x = nn.relu(layers.batch_norm("conv_bn2", train, self.dtype)(x))
    x = ConvTransposeNoOverlap(1, k3, self.dtype, name="conv3")(x)
    return jax.nn.sigmoid(x)


class DBHead(nn.Module):
  """x [B, h, w, C] -> {"maps": [B, 4h, 4w, 1] (eval) or [B, 4h, 4w, 3] (train)}.

  `with_thresh=False` (the inference export) has no `thresh` branch and cannot train; with
  it, init creates the branch whatever `train` is.
  """

  k: int = 50
  with_thresh: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    shrink = Head(dtype=self.dtype, name="binarize")(x, train)
    if not self.with_thresh:
      if train:
        raise ValueError("DBHead(with_thresh=False) has no threshold branch to train")
      return {"maps": shrink}
    thresh = Head(dtype=self.dtype, name="thresh")(x, train)
    if not train:
      return {"maps": shrink}
    binary = jax.nn.sigmoid(self.k * (shrink - thresh))
    return {"maps": jnp.concatenate([shrink, thresh, binary], axis=-1)}
