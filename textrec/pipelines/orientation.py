"""Text-line orientation (0 or 180 degrees): which crops are upside down, and those turned.

Two classifiers, each pre-processed and applied as its own pipeline does it:
  * ch_ppocr_mobile_v2.0_cls (textrec/models/classifier.py; PaddleOCR 2.x): each crop resized
    to height 48 keeping its aspect ratio (width at most 192), scaled to [-1, 1] and
    right-padded with zeros to 48 x 192 (PaddleOCR's `ClsResizeImg`); a crop is turned
    (cv2.rotate) when its "180" probability exceeds the threshold (cls_thresh, 0.9).
  * PP-LCNet_x1_0_textline_ori (textrec/models/pplcnet.py; PaddleX 3 / PaddleOCR 3): each crop
    as RGB resized to 160 x 80 and ImageNet-normalised (pipelines/cls_preprocess.py); a crop
    is turned when its top-1 class is "180_degree", with no threshold, by PaddleX's
    `rotate_image` (pipelines/rotate.py).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Sequence

import cv2
import numpy as np

from textrec.errors import UsageError
from textrec.inference.predictor import batch_sizes
from textrec.pipelines import cls_preprocess, forward, rotate

# ch_ppocr_mobile_v2.0_cls's input and labels (also what its textrec export declares).
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


@dataclasses.dataclass(frozen=True)
class Spec:
  """How a text-line orientation model is fed and applied."""

  input_hw: tuple[int, int]
  labels: tuple[str, str]                        # (upright, upside down)
  preprocess: Callable[[np.ndarray], np.ndarray]  # BGR crop -> f32[*input_hw, 3]
  thresh: float | None                           # default threshold; None: top-1 only
  turn: Callable[[np.ndarray], np.ndarray]       # an upside-down crop, turned


SPECS = {
    "ch_ppocr_mobile_v2.0_cls": Spec((HEIGHT, WIDTH), LABELS, resize_norm, 0.9,
                                     lambda c: cv2.rotate(c, cv2.ROTATE_180)),
    "PP-LCNet_x1_0_textline_ori": Spec(cls_preprocess.TEXTLINE_HW, ("0_degree", "180_degree"),
                                       cls_preprocess.textline_input, None,
                                       lambda c: rotate.rotate(c, 180)),
}


def spec_of(model_name: str) -> Spec:
  """The Spec of text-line orientation model `model_name` (UsageError for another)."""
  if model_name not in SPECS:
    hint = (" (a page orientation model: textrec.pipelines.doc_orientation."
            "load_doc_orientation)" if model_name == "PP-LCNet_x1_0_doc_ori" else "")
    raise UsageError(f"{model_name!r} is not a text-line orientation model{hint}; available: "
                     f"{sorted(SPECS)}")
  return SPECS[model_name]


class TextlineOrientation:
  """Classifies crops as upright (class 0) or upside down (class 1) and turns the latter:
  a crop is turned when class 1 is its top-1 class (numpy argsort order, as PaddleX's Topk)
  and, when `thresh` is not None, its probability exceeds `thresh`. thresh=None takes the
  model's default (`Spec.thresh`: 0.9 for ch_ppocr_mobile_v2.0_cls, none for
  PP-LCNet_x1_0_textline_ori)."""

  def __init__(self, model_name: str, forward, source: str = "", batch_size: int = 6,
               thresh: float | None = None):
    self.spec = spec_of(model_name)
    thresh = self.spec.thresh if thresh is None else thresh
    if thresh is not None and not 0.0 <= thresh <= 1.0:
      raise UsageError(f"textline orientation thresh must be in [0, 1]; got {thresh}")
    if int(batch_size) < 1:
      raise UsageError(f"textline orientation batch_size must be at least 1; got {batch_size}")
    self.model_name = model_name
    self.forward = forward  # x f32[B, H, W, 3] -> probabilities [B, 2] (forward.py)
    self.source = source
    self.batch_size = int(batch_size)
    self.thresh = None if thresh is None else float(thresh)

  def __repr__(self) -> str:
    return f"TextlineOrientation({self.model_name!r}, source={self.source!r})"

  def probs(self, crops: Sequence[np.ndarray]) -> np.ndarray:
    """BGR crops -> probabilities f32[N, 2] over (upright, upside down); each batch's rows
    padded to one of `predictor.batch_sizes(batch_size)` (few compiled shapes)."""
    bs, sizes = self.batch_size, batch_sizes(self.batch_size)
    h, w = self.spec.input_hw
    out = np.zeros((len(crops), len(self.spec.labels)), np.float32)
    for start in range(0, len(crops), bs):
      chunk = crops[start:start + bs]
      rows = next(s for s in sizes if s >= len(chunk))
      x = np.zeros((rows, h, w, 3), np.float32)
      for k, c in enumerate(chunk):
        x[k] = self.spec.preprocess(c)
      out[start:start + len(chunk)] = self.forward(x)[:len(chunk)]
    return out

  def __call__(self, crops: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int],
                                                           list[float]]:
    """-> (crops, upside-down ones turned 180 degrees; class per crop (1 = turned); the
    top-1 class's probability)."""
    probs = self.probs(crops)
    turned, angles, scores = [], [], []
    for c, p in zip(crops, probs):
      top = int(np.argsort(p)[-1])
      flip = top == 1 and (self.thresh is None or bool(p[1] > self.thresh))
      turned.append(self.spec.turn(c) if flip else c)
      angles.append(int(flip))
      scores.append(float(p[top]))
    return turned, angles, scores


def load_orientation(name: str = "ch_ppocr_mobile_v2.0_cls",
                     model_dir: str | os.PathLike | None = None, backend: str = "auto",
                     precision: str = "f32", **kwargs) -> TextlineOrientation:
  """A TextlineOrientation (kwargs: batch_size, thresh) of model `name` (`SPECS`) with the
  official weights, a Paddle inference directory's or a textrec export's, on `backend` at
  `precision` (forward.load_forward)."""
  spec_of(name)
  fwd, source = forward.load_forward(name, "cls", model_dir, backend, precision)
  return TextlineOrientation(name, fwd, source=source, **kwargs)
