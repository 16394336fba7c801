"""Text-line orientation (0 or 180 degrees) with ch_ppocr_mobile_v2.0_cls
(textrec/models/classifier.py), pre-processed as PaddleOCR's `ClsResizeImg`: each crop
resized to height 48 keeping its aspect ratio (width at most 192), scaled to [-1, 1] and
right-padded with zeros to 48 x 192.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import cv2
import numpy as np

from textrec.errors import UsageError
from textrec.inference.predictor import batch_sizes
from textrec.pipelines import forward

HEIGHT, WIDTH = 48, 192
LABELS = ("0", "180")


def resize_norm(img: np.ndarray) -> np.ndarray:
  """BGR uint8 [h, w, 3] -> f32[48, 192, 3]: resized to height 48 (width
  min(192, ceil(48 w / h))), (x / 255 - 0.5) / 0.5, zeros to the right."""
  h, w = img.shape[:2]
  rw = min(WIDTH, int(math.ceil(HEIGHT * w / h)))
  out = np.zeros((HEIGHT, WIDTH, 3), np.float32)
  out[:, :rw] = cv2.resize(img, (rw, HEIGHT)).astype(np.float32) / 127.5 - 1.0
  return out


class TextlineOrientation:
  """Classifies crops as upright (0) or upside down (1, "180"); a crop is turned only when
  its "180" probability exceeds `thresh` (PaddleOCR's cls_thresh, 0.9)."""

  def __init__(self, model_name: str, forward, source: str = "", batch_size: int = 6,
               thresh: float = 0.9):
    if not 0.0 <= thresh <= 1.0:
      raise UsageError(f"textline orientation thresh must be in [0, 1]; got {thresh}")
    self.model_name = model_name
    self.forward = forward  # x f32[B, 48, 192, 3] -> probabilities [B, 2] (forward.py)
    self.source = source
    self.batch_size = int(batch_size)
    self.thresh = float(thresh)

  def __repr__(self) -> str:
    return f"TextlineOrientation({self.model_name!r}, source={self.source!r})"

  def probs(self, crops: Sequence[np.ndarray]) -> np.ndarray:
    """BGR crops -> probabilities f32[N, 2] over ("0", "180"); each batch's rows padded to
    one of `predictor.batch_sizes(batch_size)` (few compiled shapes)."""
    bs, sizes = self.batch_size, batch_sizes(self.batch_size)
    out = np.zeros((len(crops), len(LABELS)), np.float32)
    for start in range(0, len(crops), bs):
      chunk = crops[start:start + bs]
      rows = next(s for s in sizes if s >= len(chunk))
      x = np.zeros((rows, HEIGHT, WIDTH, 3), np.float32)
      for k, c in enumerate(chunk):
        x[k] = resize_norm(c)
      out[start:start + len(chunk)] = self.forward(x)[:len(chunk)]
    return out

  def __call__(self, crops: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int],
                                                           list[float]]:
    """-> (crops, upside-down ones turned 180 degrees; angle class per crop (1 = turned);
    the chosen class's probability)."""
    probs = self.probs(crops)
    turned, angles, scores = [], [], []
    for c, p in zip(crops, probs):
      flip = bool(p[1] > p[0] and p[1] > self.thresh)
      turned.append(cv2.rotate(c, cv2.ROTATE_180) if flip else c)
      angles.append(int(flip))
      scores.append(float(p.max()))
    return turned, angles, scores


def load_orientation(name: str = "ch_ppocr_mobile_v2.0_cls",
                     model_dir: str | os.PathLike | None = None, **kwargs
                     ) -> TextlineOrientation:
  """A TextlineOrientation with the official weights, a Paddle inference directory's or a
  textrec export's."""
  fwd, source = forward.load_forward(name, "cls", model_dir)
  return TextlineOrientation(name, fwd, source=source, **kwargs)
