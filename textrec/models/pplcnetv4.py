"""PPLCNetV4, the PP-OCRv6 backbone (PaddleOCR `backbones/rec_lcnetv4.py`), NHWC: recognition
(`PPLCNetV4`) and detection (`PPLCNetV4Det`, the `det=True` variant) share its blocks.

x [B, H, W, 3] -> [B, 1, T, C] with C = 160 (tiny) / 384 (small) / 768 (medium). The stem has
stride 4; blocks4 and blocks5 each halve H (stride (2, 1)), so 48x320 -> 12x80 -> 6x80 -> 3x80,
pooled as PPLCNetV3: eval `avg_pool2d([3, 2])` (T = W/8), training adaptive to [1, 40].

Block (`blocks<s>_<i>`, PaddleOCR's LCNetV4Block):
  * `token_mixer`: `rep_dw` (RepDWConv, stride 1 and in == out channels:
    BN(ConvBN_dw3x3(x) + dw1x1(x) + x)) or `dw_conv` (ConvBN dw 3x3 with the stride), then
    `se` (PPLCNetV3's SELayer, Paddle's hardsigmoid) where the table says so;
  * `channel_mixer`: `expand` ConvBN 1x1 C -> 2C, exact GELU, `compress` ConvBN 1x1 2C -> out;
  * residual t + channel_mixer(t) on the token mixer's output t (stride 1, in == out).
Stem `conv1`: small / medium a StemBlock (`stem1`, `stem2a`, `stem2b`, `stem3`, `stem4`, each
conv + BN + ReLU; Paddle's SAME padding on the 2x2 convs and the max pool); tiny the "simple"
stem `conv1_0` (ConvBN 3x3 s2) -> GELU -> `conv1_2` (ConvBN 3x3 s2).

Deploy form (`deploy=True`, PaddleOCR's `PPLCNetV4.rep()`): every ConvBN of the StemBlock
becomes `conv` with a bias, `dw_conv` / `expand` / `compress` become a conv with bias
(`kernel`, `bias` in place), `rep_dw` one `reparam_conv`; tiny's simple stem is kept.
`deploy_variables` converts training-form variables (pure numpy).

Detection (`PPLCNetV4Det`, NET_CONFIG_DET): x [B, H, W, 3] -> 4 maps [B, H/s, W/s, C_i],
s = 4, 8, 16, 32: a StemBlock `stem` (stride 4; its ConvBNs fuse in the deploy form), then
stages `blocks_s1` (stride 1) and `blocks_s2..s4` (each opening with a stride-2 `dw_conv`
block), each stage's output one of the maps.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from textrec.models import layers, reparam
from textrec.models.pphgnetv2 import max_pool_same, pad_same
from textrec.models.pplcnetv3 import SELayer, rec_pool

Stride = int | tuple[int, int]
H2 = (2, 1)

# model size -> (stem: None = "simple" (tiny) or (mid, out) of the StemBlock, stages); each
# stage a tuple of blocks (in, out, stride, se); kernel 3 everywhere.
def _six(c: int) -> tuple:
  return tuple((c, c, 1, i % 2 == 0) for i in range(6))


CONFIGS: dict[str, tuple[Any, dict[str, tuple]]] = {
    "tiny": (None, {
        "blocks2": ((48, 48, 1, True),),
        "blocks3": ((48, 48, 1, False),),
        "blocks4": ((48, 96, H2, False), (96, 96, 1, True), (96, 96, 1, False)),
        "blocks5": ((96, 160, H2, False), (160, 160, 1, True), (160, 160, 1, False),
                    (160, 160, 1, False)),
    }),
    "small": ((48, 96), {
        "blocks2": ((96, 96, 1, True),),
        "blocks3": ((96, 96, 1, False), (96, 96, 1, False)),
        "blocks4": ((96, 192, H2, False),) + _six(192),
        "blocks5": ((192, 384, H2, False), (384, 384, 1, True), (384, 384, 1, False)),
    }),
    "medium": ((64, 128), {
        "blocks2": ((128, 128, 1, True),),
        "blocks3": ((128, 256, 1, False), (256, 256, 1, False), (256, 256, 1, True)),
        "blocks4": ((256, 512, H2, False),) + _six(512),
        "blocks5": ((512, 768, H2, False), (768, 768, 1, True), (768, 768, 1, False)),
    }),
}
BN_EPS = 1e-5

# Detection: model size -> ((stem mid, stem out), stages of blocks (in, out, stride, se)).
CONFIGS_DET: dict[str, tuple[tuple[int, int], dict[str, tuple]]] = {
    "tiny": ((16, 32), {
        "blocks_s1": ((32, 32, 1, True), (32, 32, 1, False)),
        "blocks_s2": ((32, 48, 2, False), (48, 48, 1, True), (48, 48, 1, False)),
        "blocks_s3": ((48, 64, 2, False), (64, 64, 1, True), (64, 64, 1, False),
                      (64, 64, 1, True), (64, 64, 1, False)),
        "blocks_s4": ((64, 160, 2, False), (160, 160, 1, True), (160, 160, 1, False)),
    }),
    "small": ((24, 48), {
        "blocks_s1": ((48, 48, 1, True), (48, 48, 1, False)),
        "blocks_s2": ((48, 96, 2, False), (96, 96, 1, True), (96, 96, 1, False)),
        "blocks_s3": ((96, 192, 2, False), (192, 192, 1, True), (192, 192, 1, False),
                      (192, 192, 1, True), (192, 192, 1, False)),
        "blocks_s4": ((192, 384, 2, False), (384, 384, 1, True), (384, 384, 1, False)),
    }),
    "medium": ((64, 128), {
        "blocks_s1": ((128, 128, 1, True), (128, 128, 1, False)),
        "blocks_s2": ((128, 256, 2, False), (256, 256, 1, True), (256, 256, 1, False)),
        "blocks_s3": ((256, 512, 2, False), (512, 512, 1, True), (512, 512, 1, False),
                      (512, 512, 1, True), (512, 512, 1, False)),
        "blocks_s4": ((512, 896, 2, False), (896, 896, 1, True), (896, 896, 1, False)),
    }),
}


class ConvBNAct(nn.Module):
  """Conv (padding (k-1)//2, no bias) + BN (+ ReLU): `conv`, `bn`. Deploy: `conv` with bias."""

  features: int
  kernel_size: int = 3
  strides: Stride = 1
  act: bool = True
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = layers.Conv2D(self.features, self.kernel_size, self.strides, (self.kernel_size - 1) // 2,
                      use_bias=self.deploy, dtype=self.dtype, name="conv")(x)
    if not self.deploy:
      x = layers.batch_norm("bn", train, self.dtype)(x)
    return nn.relu(x) if self.act else x


class Conv2DBN(nn.Module):
  """PaddleOCR's Conv2D_BN: `conv` (no bias) + `bn`; deploy: `kernel` + `bias` in place.
  `bn_scale_init`: the BN scale's initial value (0 for a residual block's `compress`)."""

  features: int
  kernel_size: int = 1
  strides: Stride = 1
  groups: int = 1
  deploy: bool = False
  dtype: Any = None
  bn_scale_init: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    k, pad = self.kernel_size, (self.kernel_size - 1) // 2
    if self.deploy:
      dt = self.dtype or x.dtype
      kernel = self.param("kernel", nn.initializers.he_normal(),
                          (k, k, x.shape[-1] // self.groups, self.features))
      bias = self.param("bias", nn.initializers.zeros, (self.features,))
      y = layers.conv2d(x.astype(dt), kernel.astype(dt), self.strides, pad, self.groups)
      return y + bias.astype(dt)
    x = layers.Conv2D(self.features, k, self.strides, pad, self.groups, use_bias=False,
                      dtype=self.dtype, name="conv")(x)
    # layers.batch_norm's settings (Paddle's BatchNorm2D) with this scale init.
    return nn.BatchNorm(use_running_average=not layers.bn_uses_batch_stats(train), momentum=0.9,
                        epsilon=1e-5, dtype=self.dtype, use_fast_variance=False,
                        scale_init=nn.initializers.constant(self.bn_scale_init), name="bn")(x)


class RepDWConv(nn.Module):
  """BN(ConvBN_dw3x3(x) + dw1x1(x) + x): `conv`, `conv1` (no bias), `bn`; deploy:
  `reparam_conv` (dw 3x3 with bias)."""

  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    if self.deploy:
      return layers.Conv2D(c, 3, 1, 1, groups=c, dtype=self.dtype, name="reparam_conv")(x)
    y = Conv2DBN(c, 3, 1, c, dtype=self.dtype, name="conv")(x, train)
    y = y + layers.Conv2D(c, 1, groups=c, use_bias=False, dtype=self.dtype, name="conv1")(x)
    return layers.batch_norm("bn", train, self.dtype)(y + x)


class TokenMixer(nn.Module):
  """`rep_dw` (stride 1, in == out) or `dw_conv` (dw 3x3 ConvBN with the stride), then `se`."""

  strides: Stride = 1
  use_se: bool = False
  rep: bool = True
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    if self.rep:
      x = RepDWConv(self.deploy, self.dtype, name="rep_dw")(x, train)
    else:
      x = Conv2DBN(c, 3, self.strides, c, self.deploy, self.dtype, name="dw_conv")(x, train)
    if self.use_se:
      x = SELayer(dtype=self.dtype, name="se")(x)
    return x


class LCNetV4Block(nn.Module):
  """`token_mixer` -> `channel_mixer` (`expand` 1x1 to 2C, GELU, `compress` 1x1 to out),
  residual on the token mixer's output when stride 1 and in == out."""

  features: int
  strides: Stride = 1
  use_se: bool = False
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin = x.shape[-1]
    same = self.strides == 1 and cin == self.features
    t = TokenMixer(self.strides, self.use_se, same, self.deploy, self.dtype,
                   name="token_mixer")(x, train)
    y = _ChannelMixer(self.features, same, self.deploy, self.dtype, name="channel_mixer")(
        t, train)
    return t + y if same else y


class _ChannelMixer(nn.Module):
  """`expand` 1x1 ConvBN to 2C, GELU, `compress` 1x1 ConvBN (BN scale initialised to 0 in a
  residual block, as PaddleOCR)."""

  features: int
  residual: bool = False
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    y = Conv2DBN(2 * x.shape[-1], 1, deploy=self.deploy, dtype=self.dtype, name="expand")(
        x, train)
    y = layers.gelu(y)
    return Conv2DBN(self.features, 1, deploy=self.deploy, dtype=self.dtype,
                    bn_scale_init=0.0 if self.residual else 1.0, name="compress")(y, train)


class StemBlock(nn.Module):
  """stem1 3x3 s2 -> [maxpool 2 SAME, stem2b(stem2a(.)) 2x2 SAME] concat -> stem3 3x3 s2 ->
  stem4 1x1, each conv + BN + ReLU."""

  mid_channels: int
  out_channels: int
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    mid, kw = self.mid_channels, dict(deploy=self.deploy, dtype=self.dtype)
    x = ConvBNAct(mid, 3, 2, name="stem1", **kw)(x, train)
    x2 = ConvBNAct(mid // 2, 2, name="stem2a", **kw)(pad_same(x, (2, 2)), train)
    x2 = ConvBNAct(mid, 2, name="stem2b", **kw)(pad_same(x2, (2, 2)), train)
    x = jnp.concatenate([max_pool_same(x, 2), x2], axis=-1)
    x = ConvBNAct(mid, 3, 2, name="stem3", **kw)(x, train)
    return ConvBNAct(self.out_channels, 1, name="stem4", **kw)(x, train)


class PPLCNetV4(nn.Module):
  """[B, H, W, 3] -> [B, 1, T, C]. Names: `conv1` (StemBlock) or `conv1_0`, `conv1_2` (tiny),
  `blocks<2..5>_<i>`."""

  model_size: str = "small"
  train_pool_hw: tuple[int, int] = (1, 40)
  eval_pool: tuple[int, int] = (3, 2)
  deploy: bool = False
  dtype: Any = None

  @property
  def out_channels(self) -> int:
    return CONFIGS[self.model_size][1]["blocks5"][-1][1]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.model_size not in CONFIGS:
      raise ValueError(f"PPLCNetV4: unknown model_size {self.model_size!r}; "
                       f"known: {sorted(CONFIGS)}")
    stem, stages = CONFIGS[self.model_size]
    if stem is None:  # the "simple" stem: kept as conv + BN in the deploy form too
      x = ConvBNAct(24, 3, 2, act=False, dtype=self.dtype, name="conv1_0")(x, train)
      x = layers.gelu(x)
      x = ConvBNAct(48, 3, 2, act=False, dtype=self.dtype, name="conv1_2")(x, train)
    else:
      x = StemBlock(*stem, self.deploy, self.dtype, name="conv1")(x, train)
    for stage, blocks in stages.items():
      for i, (_, out_c, s, se) in enumerate(blocks):
        x = LCNetV4Block(out_c, s, se, self.deploy, self.dtype, name=f"{stage}_{i}")(x, train)
    return rec_pool(x, train, self.train_pool_hw, self.eval_pool)


class PPLCNetV4Det(nn.Module):
  """[B, H, W, 3] (H, W multiples of 32) -> 4 maps [B, H/s, W/s, C_i], s = 4, 8, 16, 32.
  Names: `stem` (StemBlock), `blocks_s<1..4>_<i>`."""

  model_size: str = "small"
  deploy: bool = False
  dtype: Any = None

  @property
  def out_channels(self) -> tuple[int, ...]:
    return tuple(blocks[-1][1] for blocks in CONFIGS_DET[self.model_size][1].values())

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> list[jax.Array]:
    if self.model_size not in CONFIGS_DET:
      raise ValueError(f"PPLCNetV4Det: unknown model_size {self.model_size!r}; "
                       f"known: {sorted(CONFIGS_DET)}")
    stem, stages = CONFIGS_DET[self.model_size]
    x = StemBlock(*stem, self.deploy, self.dtype, name="stem")(x, train)
    outs = []
    for stage, blocks in stages.items():
      for i, (_, out_c, s, se) in enumerate(blocks):
        x = LCNetV4Block(out_c, s, se, self.deploy, self.dtype, name=f"{stage}_{i}")(x, train)
      outs.append(x)
    return outs


# ----------------------------------------------------------------------------------------------
# Training form -> deploy form (PPLCNetV4.rep()), numpy.

def _np(x: Any) -> np.ndarray:
  return np.asarray(x, dtype=np.float32)


def _fold(kernel: Any, bn: Mapping, stats: Mapping, eps: float) -> dict:
  k, b = reparam.fuse_bn(kernel, bn, stats, eps)
  return {"kernel": _np(k), "bias": _np(b)}


def _fuse_rep_dw(p: Mapping, s: Mapping, eps: float) -> dict:
  """RepDWConv: (3x3 ConvBN + padded 1x1 + identity) through the outer BN."""
  k3, b3 = reparam.fuse_bn(p["conv"]["conv"]["kernel"], p["conv"]["bn"], s["conv"]["bn"], eps)
  c = k3.shape[-1]
  k = k3 + np.pad(_np(p["conv1"]["kernel"]), ((1, 1), (1, 1), (0, 0), (0, 0)))
  k = k + reparam.identity_kernel(c, 1, 3)
  std = np.sqrt(_np(s["bn"]["var"]) + np.float32(eps))
  a = _np(p["bn"]["scale"]) / std
  bias = _np(p["bn"]["bias"]) + (b3 - _np(s["bn"]["mean"])) * a
  return {"reparam_conv": {"kernel": _np(k * a), "bias": _np(bias)}}


def _copy(tree: Any) -> Any:
  if isinstance(tree, Mapping):
    return {k: _copy(v) for k, v in tree.items()}
  return np.asarray(tree)


def _fuse_block(p: Mapping, s: Mapping, eps: float) -> dict:
  tm, ts = p["token_mixer"], s["token_mixer"]
  out_tm: dict = {}
  if "rep_dw" in tm:
    out_tm["rep_dw"] = _fuse_rep_dw(tm["rep_dw"], ts["rep_dw"], eps)
  else:
    out_tm["dw_conv"] = _fold(tm["dw_conv"]["conv"]["kernel"], tm["dw_conv"]["bn"],
                              ts["dw_conv"]["bn"], eps)
  if "se" in tm:
    out_tm["se"] = _copy(tm["se"])
  cm, cs = p["channel_mixer"], s["channel_mixer"]
  return {"token_mixer": out_tm,
          "channel_mixer": {n: _fold(cm[n]["conv"]["kernel"], cm[n]["bn"], cs[n]["bn"], eps)
                            for n in ("expand", "compress")}}


def is_fused(backbone_params: Mapping) -> bool:
  first = min(k for k in backbone_params if k.startswith("blocks"))
  return "bn" not in backbone_params[first]["channel_mixer"]["expand"]


def deploy_variables(variables: Mapping, path: Sequence[str] = ("backbone",),
                     eps: float = BN_EPS) -> dict:
  """Training-form variables of a model holding a PPLCNetV4 (or PPLCNetV4Det) at `path` ->
  its deploy form's (everything outside the backbone, and tiny's simple stem, copied).
  Idempotent."""
  out = {c: _copy(v) for c, v in variables.items()}
  p = variables["params"]
  for k in path:
    p = p[k]
  if is_fused(p):
    return out
  s = variables["batch_stats"]
  for k in path:
    s = s[k]
  new_p, new_s = {}, {}
  for name, node in p.items():
    st = s.get(name, {})
    if name in ("conv1", "stem"):  # a StemBlock (rec small / medium, det)
      new_p[name] = {k: {"conv": _fold(v["conv"]["kernel"], v["bn"], st[k]["bn"], eps)}
                     for k, v in node.items()}
    elif name.startswith("blocks"):
      new_p[name] = _fuse_block(node, st, eps)
    else:
      new_p[name] = _copy(node)
      if st:
        new_s[name] = _copy(st)
  dp, ds = out["params"], out["batch_stats"]
  for k in path[:-1]:
    dp, ds = dp[k], ds[k]
  dp[path[-1]] = new_p
  if new_s:
    ds[path[-1]] = new_s
  else:
    del ds[path[-1]]
  return out
