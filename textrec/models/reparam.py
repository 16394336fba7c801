"""Training-form -> deploy-form variables (PaddleOCR's `LearnableRepLayer.rep()`), pure numpy.

Every LearnableRepLayer (a params node holding `conv_kxk_0`...) becomes
`{reparam_conv: {kernel, bias}, lab, act}`: each ConvBN branch is folded
(kernel * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps)), the 1x1 branch is
zero-padded to k x k, the identity BatchNorm becomes a centred one-hot kernel, and all are
summed in Paddle's order (kxk branches, then 1x1, then identity). Its BatchNorm statistics
are dropped. Everything else is copied unchanged. Kernels are HWIO.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

BN_EPS = 1e-5


def _np(x: Any) -> np.ndarray:
  return np.asarray(x, dtype=np.float32)


def fuse_bn(kernel: np.ndarray, bn: Mapping, stats: Mapping, eps: float = BN_EPS
            ) -> tuple[np.ndarray, np.ndarray]:
  """kernel [kh, kw, I, O] and its BatchNorm -> (fused kernel, bias [O])."""
  gamma, beta = _np(bn["scale"]), _np(bn["bias"])
  mean, var = _np(stats["mean"]), _np(stats["var"])
  std = np.sqrt(var + np.float32(eps))
  t = gamma / std
  return _np(kernel) * t, beta - mean * gamma / std


def identity_kernel(channels: int, in_per_group: int, k: int) -> np.ndarray:
  """HWIO kernel [k, k, in_per_group, channels] passing each channel through unchanged."""
  ker = np.zeros((k, k, in_per_group, channels), np.float32)
  ker[k // 2, k // 2, np.arange(channels) % in_per_group, np.arange(channels)] = 1.0
  return ker


def fuse_rep_layer(params: Mapping, stats: Mapping, eps: float = BN_EPS
                   ) -> tuple[np.ndarray, np.ndarray]:
  """One LearnableRepLayer's params/batch_stats nodes -> (kernel HWIO, bias)."""
  names = sorted((n for n in params if n.startswith("conv_kxk_")),
                 key=lambda n: int(n.rsplit("_", 1)[1]))
  k_sum: Any = 0
  b_sum: Any = 0
  for n in names:
    ker, b = fuse_bn(params[n]["conv"]["kernel"], params[n]["bn"], stats[n]["bn"], eps)
    k_sum = k_sum + ker
    b_sum = b_sum + b
  kh, kw, cin_g, cout = k_sum.shape
  k_1x1: Any = 0
  b_1x1: Any = 0
  if "conv_1x1" in params:
    ker, b_1x1 = fuse_bn(params["conv_1x1"]["conv"]["kernel"], params["conv_1x1"]["bn"],
                         stats["conv_1x1"]["bn"], eps)
    ph, pw = kh // 2, kw // 2
    k_1x1 = np.pad(ker, ((ph, ph), (pw, pw), (0, 0), (0, 0)))
  k_id: Any = 0
  b_id: Any = 0
  if "identity" in params:
    k_id, b_id = fuse_bn(identity_kernel(cout, cin_g, kh), params["identity"],
                         stats["identity"], eps)
  return _np(k_sum + k_1x1 + k_id), _np(b_sum + b_1x1 + b_id)


def _is_rep_layer(node: Any) -> bool:
  return isinstance(node, Mapping) and "conv_kxk_0" in node


def deploy_variables(variables: Mapping, eps: float = BN_EPS) -> dict:
  """Training-form {"params", "batch_stats"} -> deploy-form variables (numpy leaves)."""
  stats = variables.get("batch_stats", {})

  def walk(p: Mapping, s: Mapping) -> dict:
    out = {}
    for name, node in p.items():
      sub_s = s.get(name, {}) if isinstance(s, Mapping) else {}
      if _is_rep_layer(node):
        ker, bias = fuse_rep_layer(node, sub_s, eps)
        out[name] = {"reparam_conv": {"kernel": ker, "bias": bias}}
        out[name].update({k: _copy(v) for k, v in node.items()
                          if k not in ("identity", "conv_1x1") and not k.startswith("conv_kxk_")})
      else:
        out[name] = walk(node, sub_s) if isinstance(node, Mapping) else np.asarray(node)
    return out

  out = {"params": walk(variables["params"], stats)}
  new_s = _drop_rep_stats(stats, variables["params"])
  if new_s:
    out["batch_stats"] = new_s
  return out


def _copy(tree: Any) -> Any:
  if isinstance(tree, Mapping):
    return {k: _copy(v) for k, v in tree.items()}
  return np.asarray(tree)


def _drop_rep_stats(stats: Mapping, params: Mapping) -> dict:
  """batch_stats minus the subtrees of LearnableRepLayers."""
  out = {}
  for name, node in stats.items():
    p = params.get(name) if isinstance(params, Mapping) else None
    if _is_rep_layer(p):
      continue
    if isinstance(node, Mapping) and isinstance(p, Mapping):
      child = _drop_rep_stats(node, p)
      if child:
        out[name] = child
    else:
      out[name] = _copy(node)
  return out
