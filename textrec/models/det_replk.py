"""RepLKFPN, the neck of the PP-OCRv6 detectors (PaddleOCR `ppocr/modeling/necks/db_fpn.py`,
registered by the configs as `UniRepLKFPN`), and its DilatedReparamBlock (from UniRepLKNet).

Four backbone maps (strides 4, 8, 16, 32) -> one fused map [B, H/4, W/4, out_channels]. As
RSEFPN (det_fpn.py): `ins_conv_<i>` RSELayers (1x1 conv + SE, shortcut) to out_channels, the
top-down sums with 2x nearest upsampling, then per level an "inp" branch and upsampling to
stride 4, concatenated coarsest first. The inp branch differs: `inp_conv_dw_<i>` (a
DilatedReparamBlock, depthwise, kernel `dilated_kernel_size`) -> `inp_conv_pw_<i>` (1x1, no
bias, to out_channels / 4) -> x + `inp_conv_se_<i>`(x) (SE with F.hardsigmoid's slope 0.2).

DilatedReparamBlock (training form): BN(dw k x k `lk_origin`) + sum over branches (k_j, r_j)
of BN(dw k_j x k_j dilated r_j, `dil_conv_k{k_j}_{r_j}` / `dil_bn_k{k_j}_{r_j}`), the
branches of each kernel size in `DILATED_BRANCHES`. Deploy form (PaddleOCR's `rep()`):
one dw conv `lk_origin` with bias; `fuse_dilated_block` converts the variables (numpy).
In training, PaddleOCR's neck also returns the top-down sums for DBHead's auxiliary heads
(`aux_in_channels`, training-only deep supervision); those heads are not implemented here.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from textrec.models import layers, reparam
from textrec.models.det_fpn import SE_HARDSIGMOID_SLOPE, RSELayer, upsample_nearest
from textrec.models.pplcnetv3 import SELayer

# kernel size -> the dilated branches (kernel, dilation), as PaddleOCR's DilatedReparamBlock.
DILATED_BRANCHES: dict[int, tuple[tuple[int, int], ...]] = {
    5: ((3, 1), (3, 2)),
    7: ((5, 1), (3, 2), (3, 3)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
}
BN_EPS = 1e-5


class DilatedDWConv(nn.Module):
  """Depthwise k x k conv with dilation r, padding r (k - 1) / 2, no bias: `kernel`
  [k, k, 1, C]."""

  kernel_size: int
  dilation: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c, k, r = x.shape[-1], self.kernel_size, self.dilation
    kernel = self.param("kernel", nn.initializers.he_normal(), (k, k, 1, c))
    dt = self.dtype or x.dtype
    p = r * (k - 1) // 2
    return lax.conv_general_dilated(
        x.astype(dt), kernel.astype(dt), (1, 1), ((p, p), (p, p)), rhs_dilation=(r, r),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)


class DilatedReparamBlock(nn.Module):
  """x [B, H, W, C] -> [B, H, W, C]; see the module doc."""

  kernel_size: int = 7
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    k, c = self.kernel_size, x.shape[-1]
    if k not in DILATED_BRANCHES:
      raise ValueError(f"DilatedReparamBlock: kernel_size must be one of "
                       f"{sorted(DILATED_BRANCHES)}, got {k}")
    if self.deploy:
      return layers.Conv2D(c, k, 1, k // 2, groups=c, dtype=self.dtype, name="lk_origin")(x)
    y = DilatedDWConv(k, 1, self.dtype, name="lk_origin")(x)
    y = layers.batch_norm("origin_bn", train, self.dtype)(y)
    for kj, r in DILATED_BRANCHES[k]:
      b = DilatedDWConv(kj, r, self.dtype, name=f"dil_conv_k{kj}_{r}")(x)
      y = y + layers.batch_norm(f"dil_bn_k{kj}_{r}", train, self.dtype)(b)
    return y


class RepLKFPN(nn.Module):
  """feats: 4 maps [B, H/s, W/s, C_i], s = 4, 8, 16, 32 -> [B, H/4, W/4, out_channels]."""

  out_channels: int = 96
  dilated_kernel_size: int = 7
  shortcut: bool = True
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, feats: Sequence[jax.Array], train: bool = False) -> jax.Array:
    if len(feats) != 4:
      raise ValueError(f"RepLKFPN takes 4 feature maps, got {len(feats)}")
    c = self.out_channels
    ins = [RSELayer(c, 1, self.shortcut, self.dtype, name=f"ins_conv_{i}") for i in range(4)]

    def inp(i: int, x: jax.Array) -> jax.Array:
      x = DilatedReparamBlock(self.dilated_kernel_size, self.deploy, self.dtype,
                              name=f"inp_conv_dw_{i}")(x, train)
      x = layers.Conv2D(c // 4, 1, use_bias=False, dtype=self.dtype,
                        name=f"inp_conv_pw_{i}")(x)
      se = SELayer(hardsigmoid_slope=SE_HARDSIGMOID_SLOPE, dtype=self.dtype,
                   name=f"inp_conv_se_{i}")(x)
      return x + se if self.shortcut else se

    # Paddle's order: the four 1x1 RSE layers coarsest first, top-down sums, inp branches.
    in_maps = {i: ins[i](feats[i]) for i in (3, 2, 1, 0)}
    outs = {3: in_maps[3]}
    for i in (2, 1, 0):
      outs[i] = in_maps[i] + upsample_nearest(outs[i + 1], 2)
    ps = [upsample_nearest(inp(i, outs[i]), 2 ** i) for i in (3, 2, 1, 0)]
    return jnp.concatenate(ps, axis=-1)


# ----------------------------------------------------------------------------------------------
# Training form -> deploy form (PaddleOCR's DilatedReparamBlock.rep()), numpy.

def _np(x: Any) -> np.ndarray:
  return np.asarray(x, dtype=np.float32)


def dilate_kernel(kernel: np.ndarray, r: int) -> np.ndarray:
  """HWIO kernel [k, k, I, O] of a conv dilated r -> the equivalent undilated kernel
  [r (k - 1) + 1, ..., I, O] (zeros between the taps)."""
  k = kernel.shape[0]
  out = np.zeros((r * (k - 1) + 1, r * (k - 1) + 1) + kernel.shape[2:], np.float32)
  out[::r, ::r] = kernel
  return out


def fuse_dilated_block(p: Mapping, s: Mapping, kernel_size: int, eps: float = BN_EPS) -> dict:
  """A DilatedReparamBlock's params / batch_stats nodes -> deploy params
  {"lk_origin": {"kernel", "bias"}}."""
  k, b = reparam.fuse_bn(p["lk_origin"]["kernel"], p["origin_bn"], s["origin_bn"], eps)
  k, b = _np(k), _np(b)
  for kj, r in DILATED_BRANCHES[kernel_size]:
    kb, bb = reparam.fuse_bn(p[f"dil_conv_k{kj}_{r}"]["kernel"], p[f"dil_bn_k{kj}_{r}"],
                             s[f"dil_bn_k{kj}_{r}"], eps)
    eq = dilate_kernel(_np(kb), r)
    pad = (kernel_size - eq.shape[0]) // 2
    k = k + np.pad(eq, ((pad, pad), (pad, pad), (0, 0), (0, 0)))
    b = b + _np(bb)
  return {"lk_origin": {"kernel": _np(k), "bias": _np(b)}}


def deploy_params(params: Mapping, stats: Mapping, kernel_size: int, eps: float = BN_EPS
                  ) -> dict:
  """A RepLKFPN's params / batch_stats nodes -> its deploy params (the deploy neck has no
  batch_stats). Already-fused params come back copied."""
  new_p: dict = {}
  for name, node in params.items():
    if name.startswith("inp_conv_dw_") and "origin_bn" in node:
      new_p[name] = fuse_dilated_block(node, stats[name], kernel_size, eps)
    else:
      new_p[name] = jax.tree.map(_np, dict(node))
  return new_p
