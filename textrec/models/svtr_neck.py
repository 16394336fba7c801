"""SVTR sequence neck (PaddleOCR `necks/rnn.py` EncoderWithSVTR + SequenceEncoder) and the
SVTR transformer pieces it uses (`backbones/rec_svtrnet.py` ConvBNLayer, Mlp, Attention, Block).

SequenceEncoder: feature map [B, 1, T, C] (NHWC) -> sequence [B, T, dims].
Names: `encoder/{conv1,conv2,svtr_block_i,norm,conv3,conv4,conv1x1}`; each ConvBN is
`{conv,norm}`; each block `{norm1,mixer/{qkv,proj},norm2,mlp/{fc1,fc2}}`.
Dropout is active when `train=True` (rng stream "dropout").
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from textrec.models import layers

_ACTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "swish": layers.swish, "gelu": layers.gelu, "relu": nn.relu, "hardswish": layers.hardswish,
    "none": lambda x: x,
}


def _trunc_normal(std: float = 0.02):
  return nn.initializers.truncated_normal(std)


class ConvBNAct(nn.Module):
  """SVTR ConvBNLayer: `conv` (no bias by default) -> BatchNorm `norm` -> activation."""

  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 1
  padding: int | Sequence[int] = 0
  groups: int = 1
  use_bias: bool = False
  act: str = "gelu"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = layers.Conv2D(self.features, self.kernel_size, self.strides, self.padding, self.groups,
                      use_bias=self.use_bias, dtype=self.dtype,
                      kernel_init=nn.initializers.variance_scaling(2.0, "fan_in", "uniform"),
                      name="conv")(x)
    x = layers.batch_norm("norm", train, self.dtype)(x)
    return _ACTS[self.act](x)


class Mlp(nn.Module):
  """`fc1` -> act -> dropout -> `fc2` -> dropout on [..., C]."""

  hidden_features: int
  out_features: int | None = None
  act: str = "gelu"
  drop: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    out = self.out_features or x.shape[-1]
    x = nn.Dense(self.hidden_features, dtype=self.dtype, kernel_init=_trunc_normal(),
                 name="fc1")(x)
    x = _ACTS[self.act](x)
    x = nn.Dropout(self.drop, deterministic=not train)(x)
    x = nn.Dense(out, dtype=self.dtype, kernel_init=_trunc_normal(), name="fc2")(x)
    return nn.Dropout(self.drop, deterministic=not train)(x)


def _attend_per_image(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T) v, one image (all its heads) at a time: q, k, v [B, h, N, hd] ->
  [B, h, N, hd].

  The CPU inference path (same sums as the batched form). XLA:CPU fuses a whole batch's
  attention into one library call whose [B, h, N, N] scores outgrow the caches at SVTRv2's
  token counts; a loop over the images keeps each one's [h, N, N] scores near the caches
  (`scripts/bench_kernels.py --attention` times the batched, per-image and per-(image, head)
  forms).
  """
  def one(qkv):
    qi, ki, vi = qkv  # [h, N, hd]
    p = jax.nn.softmax(jnp.einsum("hqd,hkd->hqk", qi, ki), axis=-1)
    return jnp.einsum("hqk,hkd->hqd", p, vi)

  return lax.map(one, (q, k, v))


class Attention(nn.Module):
  """SVTR global multi-head self-attention on x [B, N, C]: `qkv`, `proj`.

  q is scaled by head_dim**-0.5 before q @ k^T, as Paddle does. `mask` (broadcastable to
  [B, heads, N, N], additive) covers SVTR's "Local" mixer.
  """

  num_heads: int = 8
  qkv_bias: bool = False
  qk_scale: float | None = None
  attn_drop: float = 0.0
  proj_drop: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, mask: jax.Array | None = None
               ) -> jax.Array:
    b, n, c = x.shape
    hd = c // self.num_heads
    scale = self.qk_scale or hd ** -0.5
    qkv = nn.Dense(3 * c, use_bias=self.qkv_bias, dtype=self.dtype, kernel_init=_trunc_normal(),
                   name="qkv")(x)
    qkv = qkv.reshape(b, n, 3, self.num_heads, hd).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * scale, qkv[1], qkv[2]  # [B, h, N, hd]
    if mask is None and not train and layers.current_conv_impl() == "fast":
      x = _attend_per_image(q, k, v)
    else:
      attn = jnp.einsum("bhqd,bhkd->bhqk", q, k)
      if mask is not None:
        attn = attn + mask
      attn = jax.nn.softmax(attn, axis=-1)
      attn = nn.Dropout(self.attn_drop, deterministic=not train)(attn)
      x = jnp.einsum("bhqk,bhkd->bhqd", attn, v)
    x = x.transpose(0, 2, 1, 3).reshape(b, n, c)
    x = nn.Dense(c, dtype=self.dtype, kernel_init=_trunc_normal(), name="proj")(x)
    return nn.Dropout(self.proj_drop, deterministic=not train)(x)


class Block(nn.Module):
  """SVTR transformer block with a global-attention `mixer`; pre-norm unless `prenorm`
  (Paddle's `prenorm=True` means post-norm: norm(x + f(x)))."""

  num_heads: int
  mlp_ratio: float = 4.0
  qkv_bias: bool = False
  qk_scale: float | None = None
  drop: float = 0.0
  attn_drop: float = 0.0
  act: str = "gelu"
  epsilon: float = 1e-6
  prenorm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, mask: jax.Array | None = None
               ) -> jax.Array:
    c = x.shape[-1]
    norm1 = layers.layer_norm(self.epsilon, "norm1", self.dtype)
    mixer = Attention(self.num_heads, self.qkv_bias, self.qk_scale, self.attn_drop, self.drop,
                      self.dtype, name="mixer")
    norm2 = layers.layer_norm(self.epsilon, "norm2", self.dtype)
    mlp = Mlp(int(c * self.mlp_ratio), act=self.act, drop=self.drop, dtype=self.dtype,
              name="mlp")
    if self.prenorm:
      x = norm1(x + mixer(x, train, mask))
      return norm2(x + mlp(x, train))
    x = x + mixer(norm1(x), train, mask)
    return x + mlp(norm2(x), train)


class EncoderWithSVTR(nn.Module):
  """x [B, H, W, C] -> [B, H, W, dims]. `use_guide` stops gradients into the input."""

  dims: int = 64
  depth: int = 2
  hidden_dims: int = 120
  use_guide: bool = False
  num_heads: int = 8
  qkv_bias: bool = True
  mlp_ratio: float = 2.0
  drop_rate: float = 0.1
  attn_drop_rate: float = 0.1
  kernel_size: tuple[int, int] = (3, 3)
  qk_scale: float | None = None
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin = x.shape[-1]
    kh, kw = self.kernel_size
    pad = (kh // 2, kw // 2)
    z = jax.lax.stop_gradient(x) if self.use_guide else x
    h = z
    z = ConvBNAct(cin // 8, (kh, kw), padding=pad, act="swish", dtype=self.dtype,
                  name="conv1")(z, train)
    z = ConvBNAct(self.hidden_dims, 1, act="swish", dtype=self.dtype, name="conv2")(z, train)
    b, hh, ww, c = z.shape
    z = z.reshape(b, hh * ww, c)
    for i in range(self.depth):
      z = Block(self.num_heads, self.mlp_ratio, self.qkv_bias, self.qk_scale, self.drop_rate,
                self.attn_drop_rate, act="swish", epsilon=1e-5, prenorm=False, dtype=self.dtype,
                name=f"svtr_block_{i}")(z, train)
    z = layers.layer_norm(1e-6, "norm", self.dtype)(z)
    z = z.reshape(b, hh, ww, c)
    z = ConvBNAct(cin, 1, act="swish", dtype=self.dtype, name="conv3")(z, train)
    z = jnp.concatenate([h.astype(z.dtype), z], axis=-1)
    z = ConvBNAct(cin // 8, (kh, kw), padding=pad, act="swish", dtype=self.dtype,
                  name="conv4")(z, train)
    return ConvBNAct(self.dims, 1, act="swish", dtype=self.dtype, name="conv1x1")(z, train)


class SequenceEncoder(nn.Module):
  """PaddleOCR SequenceEncoder with the "svtr" encoder: `encoder` then Im2Seq.

  x [B, 1, T, C] -> [B, T, dims]. `encoder_kwargs` are EncoderWithSVTR's fields.
  """

  encoder_kwargs: Any = None
  dtype: Any = None

  @property
  def out_channels(self) -> int:
    return dict(self.encoder_kwargs or {}).get("dims", EncoderWithSVTR.dims)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    kw = dict(self.encoder_kwargs or {})
    if "kernel_size" in kw:
      kw["kernel_size"] = tuple(kw["kernel_size"])
    x = EncoderWithSVTR(**kw, dtype=self.dtype, name="encoder")(x, train)
    return im2seq(x)


def im2seq(x: jax.Array) -> jax.Array:
  """[B, 1, W, C] -> [B, W, C] (Paddle's Im2Seq requires H == 1)."""
  if x.shape[1] != 1:
    raise ValueError(f"Im2Seq expects a feature map of height 1, got shape {x.shape} (NHWC)")
  return x[:, 0]
