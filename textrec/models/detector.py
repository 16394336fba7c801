"""PP-OCRv4 mobile text detector (PaddleOCR `configs/det/PP-OCRv4/PP-OCRv4_mobile_det.yml`,
the student): PPLCNetV3 (scale 0.75, det=True) -> RSEFPN (96, shortcut) -> DBHead (k=50).

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

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import det_fpn, det_head, pplcnetv3
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
    h, w = x.shape[1:3]
    if any(isinstance(d, int) and d % 32 for d in (h, w)):  # (symbolic when exported)
      raise ValueError(f"DBDetector input sides must be multiples of 32, got {h}x{w}")
    feats = pplcnetv3.PPLCNetV3(scale=self.scale, det=True, deploy=self.deploy,
                                dtype=self.dtype, name="backbone")(x, train)
    fused = det_fpn.RSEFPN(self.neck_channels, self.shortcut, self.dtype, name="neck")(feats)
    return det_head.DBHead(self.k, self.with_thresh, self.dtype, name="head")(fused, train)


@register_model("PP-OCRv4_mobile_det", kind="det")
def pp_ocrv4_mobile_det(deploy: bool = False, dtype: Any = jnp.float32,
                        with_thresh: bool | None = None) -> DBDetector:
  """PP-OCRv4 mobile det: PPLCNetV3 x0.75 (det) + RSEFPN(96, shortcut) + DBHead(k=50).

  `with_thresh` (the DB threshold branch, training only) defaults to `not deploy`: the
  official inference export has no threshold branch.
  """
  return DBDetector(scale=0.75, neck_channels=96, shortcut=True, k=50,
                    with_thresh=not deploy if with_thresh is None else with_thresh,
                    deploy=deploy, dtype=jnp.dtype(dtype) if isinstance(dtype, str) else dtype)
