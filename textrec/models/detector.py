"""DB text detectors.

PP-OCRv4 mobile (PaddleOCR `configs/det/PP-OCRv4/PP-OCRv4_mobile_det.yml`, the student) and
PP-OCRv5 mobile (`configs/det/PP-OCRv5/PP-OCRv5_mobile_det.yml`: the same network, other
weights): PPLCNetV3 (scale 0.75, det=True) -> RSEFPN (96, shortcut) -> DBHead (k=50).
PP-OCRv6 small / tiny (`configs/det/PP-OCRv6/PP-OCRv6_{small,tiny}_det.yml`, `RepLKDetector`):
PPLCNetV4 (det) -> RepLKFPN (96 / 64 channels, dilated kernel 7 / 5, shortcut) -> DBHead (k=50),
whose deploy form also folds the head's BatchNorms (det_head.py); `deploy_variables` converts
its training-form variables.

`module.apply(variables, x, train=False)` with x f32[B, H, W, 3] (NHWC, normalised RGB as
PaddleOCR's det preprocessing makes it; H, W multiples of 32) returns {"maps": [B, H, W, 1]},
the shrink (text probability) map; in training {"maps": [B, H, W, 3]} (shrink, threshold,
binary). Variables: `backbone/...`, `neck/...`, `head/binarize/...` (and `head/thresh/...`
with the threshold branch) as PaddleOCR's state_dict; `deploy=True` is the re-parameterised
form of the official inference export (`reparam.deploy_variables` converts training-form
variables; drop `head/thresh` for a `with_thresh=False` model).
DB post-processing (boxes from the map) is not part of the model.
"""
from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import det_fpn, det_head, det_replk, pplcnetv3, pplcnetv4
from textrec.models.registry import register_model


class DBDetector(nn.Module):
  """PPLCNetV3 (det) backbone + RSEFPN neck + DBHead."""

  scale: float = 0.75
  neck_channels: int = 96
  shortcut: bool = True
  k: int = 50
  with_thresh: bool = True
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    _check_sides(x, "DBDetector")
    feats = pplcnetv3.PPLCNetV3(scale=self.scale, det=True, deploy=self.deploy,
                                dtype=self.dtype, name="backbone")(x, train)
    fused = det_fpn.RSEFPN(self.neck_channels, self.shortcut, self.dtype, name="neck")(feats)
    return det_head.DBHead(self.k, self.with_thresh, self.dtype, name="head")(fused, train)


def _check_sides(x: jax.Array, name: str) -> None:
  h, w = x.shape[1:3]
  if any(isinstance(d, int) and d % 32 for d in (h, w)):  # (symbolic when exported)
    raise ValueError(f"{name} input sides must be multiples of 32, got {h}x{w}")


class RepLKDetector(nn.Module):
  """PPLCNetV4 (det) backbone + RepLKFPN neck + DBHead (the PP-OCRv6 detectors)."""

  model_size: str = "small"
  neck_channels: int = 96
  dilated_kernel_size: int = 7
  shortcut: bool = True
  k: int = 50
  with_thresh: bool = True
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    _check_sides(x, "RepLKDetector")
    feats = pplcnetv4.PPLCNetV4Det(self.model_size, self.deploy, self.dtype,
                                   name="backbone")(x, train)
    fused = det_replk.RepLKFPN(self.neck_channels, self.dilated_kernel_size, self.shortcut,
                               self.deploy, self.dtype, name="neck")(feats, train)
    return det_head.DBHead(self.k, self.with_thresh, self.dtype, fuse_bn=self.deploy,
                           name="head")(fused, train)


def deploy_variables(variables: Mapping, dilated_kernel_size: int) -> dict:
  """Training-form variables of a RepLKDetector -> its deploy form's (numpy): the backbone's
  ConvBNs / RepDWConvs, the neck's DilatedReparamBlocks and the head's BatchNorms fused.
  Idempotent."""
  out = pplcnetv4.deploy_variables(variables)
  p, s = dict(out["params"]), dict(out.get("batch_stats", {}))
  p["neck"] = det_replk.deploy_params(p["neck"], s.pop("neck", {}), dilated_kernel_size)
  head_p, head_s = dict(p["head"]), dict(s.pop("head", {}))
  for branch in list(head_p):
    if "conv_bn1" in head_p[branch]:
      head_p[branch] = det_head.fuse_head(head_p[branch], head_s[branch])
  p["head"] = head_p
  return {"params": p, "batch_stats": s} if s else {"params": p}


def _dtype(dtype: Any) -> Any:
  return jnp.dtype(dtype) if isinstance(dtype, str) else dtype


@register_model("PP-OCRv4_mobile_det", kind="det")
def pp_ocrv4_mobile_det(deploy: bool = False, dtype: Any = jnp.float32,
                        with_thresh: bool | None = None) -> DBDetector:
  """PP-OCRv4 mobile det: PPLCNetV3 x0.75 (det) + RSEFPN(96, shortcut) + DBHead(k=50).

  `with_thresh` (the DB threshold branch, training only) defaults to `not deploy`: the
  official inference export has no threshold branch.
  """
  return DBDetector(scale=0.75, neck_channels=96, shortcut=True, k=50,
                    with_thresh=not deploy if with_thresh is None else with_thresh,
                    deploy=deploy, dtype=_dtype(dtype))


@register_model("PP-OCRv5_mobile_det", kind="det")
def pp_ocrv5_mobile_det(deploy: bool = False, dtype: Any = jnp.float32,
                        with_thresh: bool | None = None) -> DBDetector:
  """PP-OCRv5 mobile det: PP-OCRv4 mobile det's network (its config's Architecture is the
  same), with its own weights."""
  return pp_ocrv4_mobile_det(deploy, dtype, with_thresh)


# PP-OCRv6 det configs: model size -> (neck channels, dilated kernel size).
V6_DET = {"small": (96, 7), "tiny": (64, 5)}


def _v6_det(size: str, deploy: bool, dtype: Any, with_thresh: bool | None) -> RepLKDetector:
  channels, kernel = V6_DET[size]
  return RepLKDetector(size, channels, kernel, shortcut=True, k=50,
                       with_thresh=not deploy if with_thresh is None else with_thresh,
                       deploy=deploy, dtype=_dtype(dtype))


@register_model("PP-OCRv6_small_det", kind="det")
def pp_ocrv6_small_det(deploy: bool = False, dtype: Any = jnp.float32,
                       with_thresh: bool | None = None) -> RepLKDetector:
  """PP-OCRv6 small det: PPLCNetV4 small (det) + RepLKFPN(96, kernel 7) + DBHead(k=50)."""
  return _v6_det("small", deploy, dtype, with_thresh)


@register_model("PP-OCRv6_tiny_det", kind="det")
def pp_ocrv6_tiny_det(deploy: bool = False, dtype: Any = jnp.float32,
                      with_thresh: bool | None = None) -> RepLKDetector:
  """PP-OCRv6 tiny det: PPLCNetV4 tiny (det) + RepLKFPN(64, kernel 5) + DBHead(k=50)."""
  return _v6_det("tiny", deploy, dtype, with_thresh)
