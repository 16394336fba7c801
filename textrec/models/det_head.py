"""DBHead (PaddleOCR `ppocr/modeling/heads/det_db_head.py`), the head of the DB detectors.

x [B, H/4, W/4, C] -> probability maps at the input resolution [B, H, W, 1]:
`binarize` (the shrink map) always; in training also `thresh` and the approximate binary map
1 / (1 + exp(-k (shrink - thresh))), concatenated on the channel axis ([B, H, W, 3]).
Inference exports (the official ONNX) hold only `binarize`. PP-OCRv6's exports also fold each
head BatchNorm into the conv before it (`fuse_bn=True`: `conv1` with a bias, `conv2`'s bias
absorbing `conv_bn2`); PaddleOCR's `Head.rep()` doing it was not reached, so this form is
reconstructed from the official v6 det ONNX graphs (Conv with bias -> Relu -> ConvTranspose ->
Add -> Relu -> ConvTranspose -> Add -> Sigmoid). `fuse_head` converts the variables.
"""
from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

import numpy as np

from textrec.models import layers, reparam


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
  fuse_bn: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    k1, k2, k3 = self.kernel_list
    c = x.shape[-1] // 4
    x = layers.Conv2D(c, k1, padding=k1 // 2, use_bias=self.fuse_bn, dtype=self.dtype,
                      name="conv1")(x)
    if not self.fuse_bn:
      x = layers.batch_norm("conv_bn1", train, self.dtype)(x)
    x = ConvTransposeNoOverlap(c, k2, self.dtype, name="conv2")(nn.relu(x))
    if not self.fuse_bn:
      x = layers.batch_norm("conv_bn2", train, self.dtype)(x)
    x = nn.relu(x)
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
  fuse_bn: bool = False  # PP-OCRv6's deploy form (module doc)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    if self.fuse_bn and train:
      raise ValueError("DBHead(fuse_bn=True) is a deploy form and cannot train")
    shrink = Head(dtype=self.dtype, fuse_bn=self.fuse_bn, name="binarize")(x, train)
    if not self.with_thresh:
      if train:
        raise ValueError("DBHead(with_thresh=False) has no threshold branch to train")
      return {"maps": shrink}
    thresh = Head(dtype=self.dtype, fuse_bn=self.fuse_bn, name="thresh")(x, train)
    if not train:
      return {"maps": shrink}
    binary = jax.nn.sigmoid(self.k * (shrink - thresh))
    return {"maps": jnp.concatenate([shrink, thresh, binary], axis=-1)}


def fuse_head(p: Mapping, s: Mapping, eps: float = 1e-5) -> dict:
  """One Head's training-form params / batch_stats -> its `fuse_bn=True` params (numpy):
  conv_bn1 into conv1 (HWIO), conv_bn2 into the transposed conv2 ([k, k, Cout, Cin])."""
  k1, b1 = reparam.fuse_bn(p["conv1"]["kernel"], p["conv_bn1"], s["conv_bn1"], eps)
  bn, st = p["conv_bn2"], s["conv_bn2"]
  t = np.asarray(bn["scale"], np.float32) / np.sqrt(np.asarray(st["var"], np.float32)
                                                    + np.float32(eps))
  k2 = np.asarray(p["conv2"]["kernel"], np.float32) * t[:, None]
  b2 = (np.asarray(p["conv2"]["bias"], np.float32) - np.asarray(st["mean"], np.float32)) * t
  b2 = b2 + np.asarray(bn["bias"], np.float32)
  f32 = lambda v: np.asarray(v, np.float32)
  return {"conv1": {"kernel": f32(k1), "bias": f32(b1)},
          "conv2": {"kernel": f32(k2), "bias": f32(b2)},
          "conv3": {k: f32(v) for k, v in p["conv3"].items()}}
