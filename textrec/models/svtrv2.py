"""SVTRv2, the ch_SVTRv2_rec backbone (PaddleOCR `rec_svtrv2.py`), NHWC.

[B, 48, 320, 3] -> patch embed /4 -> stage 0 (Conv mixers) -> stride (2, 1) -> stage 1
(Conv then Global mixers) -> stride (2, 1) -> stage 2 (Global) -> avg_pool([H, 2]):
[B, 1, W/8, 384]. Details that matter for parity with PaddleOCR:
  * blocks are post-norm: x = norm1(x + mixer(x)); x = norm2(x + mlp(x)) (LayerNorm eps 1e-6);
  * the Conv mixer is a fixed 5x5 conv with groups=num_heads (the config's local_k is unused);
  * the downsampling LayerNorms use Paddle's default eps 1e-5;
  * drop path (stochastic depth) linearly up to `drop_path_rate` in training
    (needs a "dropout" rng).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from textrec.models.layers import Conv2D, batch_norm, gelu, layer_norm
from textrec.models.pplcnetv3 import avg_pool
from textrec.models.svtr_neck import Attention, Mlp

MIXER_CH = (("Conv",) * 6, ("Conv",) * 2 + ("Global",) * 4, ("Global",) * 6)


class DropPath(nn.Module):
  """Per-sample stochastic depth on a residual branch (identity in eval or at rate 0)."""

  rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class GlobalBlock(nn.Module):
  """Post-norm transformer block on [B, H, W, C] (attention over the H*W tokens)."""

  num_heads: int
  mlp_ratio: float = 4.0
  drop_path: float = 0.0
  eps: float = 1e-6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    b, h, w, c = x.shape
    dp = DropPath(self.drop_path)
    t = x.reshape(b, h * w, c)
    attn = Attention(self.num_heads, qkv_bias=True, dtype=self.dtype, name="mixer")
    t = layer_norm(self.eps, "norm1", self.dtype)(t + dp(attn(t, train), train))
    mlp = Mlp(int(c * self.mlp_ratio), act="gelu", dtype=self.dtype, name="mlp")
    t = layer_norm(self.eps, "norm2", self.dtype)(t + dp(mlp(t, train), train))
    return t.reshape(b, h, w, c)


class ConvBlock(nn.Module):
  """Post-norm block whose mixer is a 5x5 grouped conv (groups=num_heads), [B, H, W, C]."""

  num_heads: int
  mlp_ratio: float = 4.0
  drop_path: float = 0.0
  eps: float = 1e-6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    dp = DropPath(self.drop_path)
    x = x + dp(Conv2D(c, 5, 1, 2, groups=self.num_heads, dtype=self.dtype, name="mixer")(x),
               train)
    x = layer_norm(self.eps, "norm1", self.dtype)(x)
    mlp = Mlp(int(c * self.mlp_ratio), act="gelu", dtype=self.dtype, name="mlp")
    return layer_norm(self.eps, "norm2", self.dtype)(x + dp(mlp(x, train), train))


class SubSample(nn.Module):
  """3x3 conv (stride `strides`, bias) + LayerNorm (eps 1e-5). Names: conv, norm."""

  features: int
  strides: Sequence[int] = (2, 1)
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = Conv2D(self.features, 3, tuple(self.strides), 1, dtype=self.dtype, name="conv")(x)
    return layer_norm(1e-5, "norm", self.dtype)(x)


class ConvBNLayer(nn.Module):
  """Conv (with bias) + BN + GELU. Names: conv, norm."""

  features: int
  strides: int = 2
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = Conv2D(self.features, 3, self.strides, 1, dtype=self.dtype, name="conv")(x)
    return gelu(batch_norm("norm", train, self.dtype)(x))


class POPatchEmbed(nn.Module):
  """Two stride-2 ConvBNLayers: [B, H, W, 3] -> [B, H/4, W/4, dim]. Names: patch_embed_{0,1}."""

  dim: int
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvBNLayer(self.dim // 2, dtype=self.dtype, name="patch_embed_0")(x, train)
    return ConvBNLayer(self.dim, dtype=self.dtype, name="patch_embed_1")(x, train)


class SVTRStage(nn.Module):
  """`depth` Conv/Global blocks, then an optional SubSample to `out_dim`.

  Block names follow PaddleOCR's nn.Sequential: a parameter-free FlattenTranspose takes index
  `n_conv` when the stage ends with Global blocks after Conv ones, shifting later indices.
  """

  out_dim: int
  depth: int
  mixer: Sequence[str]
  sub_k: Sequence[int]
  num_heads: int
  mlp_ratio: float = 4.0
  drop_path: Sequence[float] = ()
  downsample: bool = True
  eps: float = 1e-6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    n_conv = sum(m == "Conv" for m in self.mixer)
    idx = 0
    for i in range(self.depth):
      dp = float(self.drop_path[i]) if len(self.drop_path) else 0.0
      cls = ConvBlock if self.mixer[i] == "Conv" else GlobalBlock
      x = cls(self.num_heads, self.mlp_ratio, dp, self.eps, self.dtype, name=f"blocks_{idx}")(
          x, train)
      idx += 1
      if i == n_conv - 1 and self.mixer[-1] != "Conv":
        idx += 1  # FlattenTranspose
    if self.downsample:
      x = SubSample(self.out_dim, self.sub_k, self.dtype, name="downsample")(x)
    return x


class SVTRv2(nn.Module):
  """[B, H, W, 3] -> [B, 1, W/8, dims[-1]] (use_pool=True, H = 48: [B, 1, 40, 384] at 320)."""

  dims: Sequence[int] = (128, 256, 384)
  depths: Sequence[int] = (6, 6, 6)
  num_heads: Sequence[int] = (4, 8, 12)
  mixer: Sequence[Sequence[str]] = MIXER_CH
  sub_k: Sequence[Sequence[int]] = ((2, 1), (2, 1), (-1, -1))
  mlp_ratio: float = 4.0
  drop_path_rate: float = 0.1
  use_pool: bool = True
  eps: float = 1e-6
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.mixer[0][0] != "Conv":
      raise NotImplementedError("SVTRv2: only configurations starting with a Conv mixer")
    x = POPatchEmbed(self.dims[0], self.dtype, name="pope")(x, train)
    dpr = np.linspace(0, self.drop_path_rate, sum(self.depths))
    n = len(self.depths)
    for i in range(n):
      start = sum(self.depths[:i])
      x = SVTRStage(self.dims[i + 1] if i < n - 1 else 0, self.depths[i], self.mixer[i],
                    self.sub_k[i], self.num_heads[i], self.mlp_ratio,
                    tuple(dpr[start:start + self.depths[i]]), downsample=i < n - 1,
                    eps=self.eps, dtype=self.dtype, name=f"stages_{i}")(x, train)
    if self.use_pool:
      x = avg_pool(x, (x.shape[1], 2))
    return x

  @property
  def out_channels(self) -> int:
    return self.dims[-1]
