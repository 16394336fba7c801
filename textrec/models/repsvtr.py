"""RepSVTR, the ch_RepSVTR_rec backbone (PaddleOCR `rec_repvit.py`, RepViT blocks), NHWC.

[B, 48, 320, 3] -> patch embed /4 -> 13 RepViT blocks (strides (2, 1) at blocks 4 and 11)
-> avg_pool([H, 2]) (training and eval alike): [B, 1, W/8, 384].

Two forms with the same outputs:
  * training form (`deploy=False`): Conv+BN pairs (`c`, `bn`) and RepVGGDW token mixers
    (`conv`, `conv1`, `bn`), as PaddleOCR's state_dict;
  * deploy form (`deploy=True`): every Conv+BN and every RepVGGDW is one conv with bias, named
    like the layer it replaces (THU-MIG RepViT `replace_batchnorm` applied to the backbone).
    `fuse_variables` converts training-form variables to it. PaddleOCR's own export never
    fuses RepSVTR: its inference model is the training form.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from textrec.models.layers import Conv2D, batch_norm, gelu
from textrec.models.pplcnetv3 import avg_pool

BN_EPS = 1e-5

# kernel, expansion, channels, use_se, use_hs, stride  (PaddleOCR's RepSVTR cfgs)
CFGS = (
    (3, 2, 96, 1, 0, 1),
    (3, 2, 96, 0, 0, 1),
    (3, 2, 96, 0, 0, 1),
    (3, 2, 192, 0, 1, (2, 1)),
    (3, 2, 192, 1, 1, 1),
    (3, 2, 192, 0, 1, 1),
    (3, 2, 192, 1, 1, 1),
    (3, 2, 192, 0, 1, 1),
    (3, 2, 192, 1, 1, 1),
    (3, 2, 192, 0, 1, 1),
    (3, 2, 384, 0, 1, (2, 1)),
    (3, 2, 384, 1, 1, 1),
    (3, 2, 384, 0, 1, 1),
)


def make_divisible(v: float, divisor: int = 8, round_limit: float = 0.9) -> int:
  new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
  if new_v < round_limit * v:
    new_v += divisor
  return new_v


class ConvBN(nn.Module):
  """Conv (no bias) + BN. Names: c, bn."""

  features: int
  kernel_size: int = 1
  strides: int | Sequence[int] = 1
  padding: int = 0
  groups: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = Conv2D(self.features, self.kernel_size, self.strides, self.padding, self.groups,
               use_bias=False, dtype=self.dtype, name="c")(x)
    return batch_norm("bn", train, self.dtype)(x)


def conv_bn(x: jax.Array, train: bool, deploy: bool, name: str, features: int,
            kernel_size: int = 1, strides: int | Sequence[int] = 1, padding: int = 0,
            groups: int = 1, dtype: Any = None) -> jax.Array:
  """ConvBN in training form, its fused conv-with-bias (same name) in deploy form.

  Call it inside a compact method; `name` is the submodule name.
  """
  if deploy:
    return Conv2D(features, kernel_size, strides, padding, groups, use_bias=True, dtype=dtype,
                  name=name)(x)
  return ConvBN(features, kernel_size, strides, padding, groups, dtype, name=name)(x, train)


class RepVGGDW(nn.Module):
  """bn(dwconv3x3_bn(x) + dwconv1x1(x) + x). Names: conv (ConvBN), conv1 (with bias), bn."""

  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c = x.shape[-1]
    y = ConvBN(c, 3, 1, 1, groups=c, dtype=self.dtype, name="conv")(x, train)
    y = y + Conv2D(c, 1, groups=c, dtype=self.dtype, name="conv1")(x)
    return batch_norm("bn", train, self.dtype)(y + x)


class SEModule(nn.Module):
  """x * sigmoid(fc2(relu(fc1(mean_hw(x))))); 1x1 convs with bias. Names: fc1, fc2."""

  rd_ratio: float = 0.25
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    rd = make_divisible(c * self.rd_ratio, 8, round_limit=0.0)
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = nn.relu(Conv2D(rd, 1, dtype=self.dtype, name="fc1")(s))
    s = Conv2D(c, 1, dtype=self.dtype, name="fc2")(s)
    return x * jax.nn.sigmoid(s)


class ChannelMixer(nn.Module):
  """Residual(pw ConvBN -> GELU -> pw ConvBN). Names: m_0, m_2."""

  hidden: int
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    y = conv_bn(x, train, self.deploy, "m_0", self.hidden, dtype=self.dtype)
    y = conv_bn(gelu(y), train, self.deploy, "m_2", x.shape[-1], dtype=self.dtype)
    return x + y


class RepViTBlock(nn.Module):
  """Token mixer (names token_mixer_{0,1,2}) then a residual channel mixer (channel_mixer)."""

  hidden: int
  out: int
  kernel_size: int
  stride: int | Sequence[int]
  use_se: bool
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    inp = x.shape[-1]
    if self.stride != 1:
      k = self.kernel_size
      x = conv_bn(x, train, self.deploy, "token_mixer_0", inp, k, self.stride, (k - 1) // 2,
                  groups=inp, dtype=self.dtype)
      if self.use_se:
        x = SEModule(0.25, self.dtype, name="token_mixer_1")(x)
      x = conv_bn(x, train, self.deploy, "token_mixer_2", self.out, dtype=self.dtype)
      return ChannelMixer(2 * self.out, self.deploy, self.dtype, name="channel_mixer")(x, train)
    if inp != self.out:
      raise ValueError(f"{self.name}: stride 1 needs in == out channels, got {inp} -> {self.out}")
    if self.deploy:
      x = Conv2D(inp, 3, 1, 1, groups=inp, dtype=self.dtype, name="token_mixer_0")(x)
    else:
      x = RepVGGDW(self.dtype, name="token_mixer_0")(x, train)
    if self.use_se:
      x = SEModule(0.25, self.dtype, name="token_mixer_1")(x)
    return ChannelMixer(self.hidden, self.deploy, self.dtype, name="channel_mixer")(x, train)


class RepSVTR(nn.Module):
  """[B, H, W, 3] -> [B, 1, W/8, 384]. `deploy=True`: fused form (see `fuse_variables`)."""

  cfgs: Sequence[Sequence[Any]] = CFGS
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    c0 = self.cfgs[0][2]
    x = conv_bn(x, train, self.deploy, "features_0_0", c0 // 2, 3, 2, 1, dtype=self.dtype)
    x = conv_bn(gelu(x), train, self.deploy, "features_0_2", c0, 3, 2, 1, dtype=self.dtype)
    cin = c0
    for i, (k, t, c, use_se, _, s) in enumerate(self.cfgs):
      out = make_divisible(c, 8)
      hidden = make_divisible(cin * t, 8)
      x = RepViTBlock(hidden, out, k, s, bool(use_se), self.deploy, self.dtype,
                      name=f"features_{i + 1}")(x, train)
      cin = out
    return avg_pool(x, (x.shape[1], 2))

  @property
  def out_channels(self) -> int:
    return make_divisible(self.cfgs[-1][2], 8)


# ----------------------------------------------------------------------------------------------
# Training form -> deploy form.


def _bn_scale_shift(p: Mapping[str, Any], s: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """BN as y = x * scale + shift (float64)."""
  scale = np.asarray(p["scale"], np.float64) / np.sqrt(np.asarray(s["var"], np.float64) + BN_EPS)
  return scale, np.asarray(p["bias"], np.float64) - np.asarray(s["mean"], np.float64) * scale


def _fuse_conv_bn(p: Mapping[str, Any], s: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """ConvBN {c, bn} -> (kernel HWIO, bias), float64."""
  scale, shift = _bn_scale_shift(p["bn"], s["bn"])
  return np.asarray(p["c"]["kernel"], np.float64) * scale, shift


def _fuse_repvggdw(p: Mapping[str, Any], s: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """RepVGGDW {conv, conv1, bn} -> one depthwise 3x3 (kernel [3, 3, 1, C], bias)."""
  k, b = _fuse_conv_bn(p["conv"], s["conv"])
  k = k.copy()
  k[1, 1] += np.asarray(p["conv1"]["kernel"], np.float64)[0, 0] + 1.0  # 1x1 branch + identity
  b = b + np.asarray(p["conv1"]["bias"], np.float64)
  scale, shift = _bn_scale_shift(p["bn"], s["bn"])
  return k * scale, b * scale + shift


def _fuse_tree(p: Mapping[str, Any], s: Mapping[str, Any]) -> tuple[dict, dict]:
  """Recursively replaces ConvBN / RepVGGDW subtrees; returns (params, leftover stats)."""
  out_p, out_s = {}, {}
  for name, sub in p.items():
    if not isinstance(sub, Mapping):
      out_p[name] = sub
      continue
    st = s.get(name, {})
    if set(sub) == {"c", "bn"}:
      k, b = _fuse_conv_bn(sub, st)
    elif set(sub) == {"conv", "conv1", "bn"}:
      k, b = _fuse_repvggdw(sub, st)
    else:
      out_p[name], rest = _fuse_tree(sub, st)
      if rest:
        out_s[name] = rest
      continue
    out_p[name] = {"kernel": jnp.asarray(k, jnp.float32), "bias": jnp.asarray(b, jnp.float32)}
  return out_p, out_s


def fuse_variables(variables: Mapping[str, Any], path: Sequence[str] = ()) -> dict:
  """Training-form variables -> deploy-form variables (pure; float64 arithmetic).

  `path` locates the RepSVTR params inside the tree, e.g. ("backbone",) for a recognizer;
  everything else is returned unchanged. The fused backbone has no batch_stats left.
  """
  params = dict(variables["params"])
  stats = dict(variables.get("batch_stats", {}))
  p, s = params, stats
  for key in path[:-1]:
    p[key] = dict(p[key])
    s[key] = dict(s.get(key, {}))
    p, s = p[key], s[key]
  leaf = path[-1] if path else None
  src_p = p[leaf] if leaf else p
  src_s = s.get(leaf, {}) if leaf else s
  new_p, new_s = _fuse_tree(src_p, src_s)
  if leaf:
    p[leaf] = new_p
    if new_s:
      s[leaf] = new_s
    else:
      s.pop(leaf, None)
  else:
    params, stats = new_p, new_s
  out = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")}
  out["params"] = params
  if stats:
    out["batch_stats"] = stats
  return out
