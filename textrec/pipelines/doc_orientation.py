"""Page orientation (0, 90, 180 or 270 degrees) with PP-LCNet_x1_0_doc_ori, as PaddleX's
document preprocessor (its `doc_preprocessor` pipeline) applies it: the page, read as RGB,
resized to a shorter side of 256, centre-cropped to 224 x 224 and ImageNet-normalised
(pipelines/cls_preprocess.py); the top-1 label is the angle, and the page is turned
counter-clockwise by that angle (PaddleX's `rotate_image`, pipelines/rotate.py), so that a
page shown turned clockwise by 90 degrees (label "90") comes back upright.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from textrec.errors import UsageError
from textrec.pipelines import cls_preprocess, forward, rotate

LABELS = ("0", "90", "180", "270")
ANGLES = tuple(int(a) for a in LABELS)
MODELS = ("PP-LCNet_x1_0_doc_ori",)


class DocOrientation:
  """Classifies whole pages by orientation and turns them upright."""

  def __init__(self, model_name: str, forward, source: str = ""):
    if model_name not in MODELS:
      raise UsageError(f"{model_name!r} is not a page orientation model; available: "
                       f"{list(MODELS)}")
    self.model_name = model_name
    self.forward = forward  # x f32[B, 224, 224, 3] -> probabilities [B, 4] (forward.py)
    self.source = source

  def __repr__(self) -> str:
    return f"DocOrientation({self.model_name!r}, source={self.source!r})"

  def probs(self, imgs: Sequence[np.ndarray]) -> np.ndarray:
    """BGR pages -> probabilities f32[N, 4] over the angles (0, 90, 180, 270), one page a
    batch (one compiled shape)."""
    out = np.zeros((len(imgs), len(LABELS)), np.float32)
    for i, img in enumerate(imgs):
      out[i] = self.forward(cls_preprocess.doc_input(img)[None])[0]
    return out

  def predict(self, img: np.ndarray) -> tuple[int, float]:
    """BGR page -> (angle of its top-1 class (numpy argsort order, as PaddleX's Topk), that
    class's probability)."""
    p = self.probs([img])[0]
    top = int(np.argsort(p)[-1])
    return ANGLES[top], float(p[top])

  def __call__(self, img: np.ndarray) -> tuple[np.ndarray, int]:
    """BGR uint8 page [h, w, 3] -> (the page turned counter-clockwise by the angle, the angle
    in {0, 90, 180, 270})."""
    angle, _ = self.predict(img)
    return rotate.rotate(img, angle), angle


def load_doc_orientation(name: str = "PP-LCNet_x1_0_doc_ori",
                         model_dir: str | os.PathLike | None = None, backend: str = "auto",
                         precision: str = "f32") -> DocOrientation:
  """A DocOrientation with the official weights, a Paddle inference directory's or a textrec
  export's, on `backend` at `precision` (forward.load_forward)."""
  if name not in MODELS:
    raise UsageError(f"{name!r} is not a page orientation model; available: {list(MODELS)}")
  fwd, source = forward.load_forward(name, "cls", model_dir, backend, precision)
  return DocOrientation(name, fwd, source=source)
