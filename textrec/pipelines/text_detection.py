"""Text detection for whole images: a registered detector (textrec/models/) with
PaddleOCR's pre-processing (`DetResizeForTest`, ImageNet normalisation of the BGR image as
read) and DB post-processing (det_postprocess.py).

`TextDetector(...)(img)` -> (quads f32[N, 4, 2] in the image's pixels, clockwise from the
top-left, in reading order; their scores). The network runs jitted; each resized input is
padded with zeros (the normalised mean colour, as the convolutions' own padding) on the
right and bottom to a multiple of `pad_to` px, so one compiled program serves many image
sizes, and the probability map is cut back to the resized image before post-processing.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from textrec.errors import UsageError
from textrec.pipelines import det_postprocess as dbp
from textrec.pipelines import forward

# PaddleOCR's det NormalizeImage: ImageNet statistics, applied to the channels as read (BGR).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class DetParams:
  """Pre- and post-processing of one detection call (PaddleX's OCR names in comments;
  defaults: PaddleX's OCR pipeline for PP-OCRv4)."""

  limit_side_len: int = 960      # text_det_limit_side_len
  limit_type: str = "max"        # text_det_limit_type: "max" | "min" | "resize_long"
  max_side_limit: int = 4000     # text_det_max_side_limit: the resized longer side's cap
  db: dbp.DBParams = dbp.DBParams()  # thresh / box_thresh / unclip_ratio = text_det_*

  def __post_init__(self):
    if self.limit_type not in dbp.LIMIT_TYPES:
      raise UsageError(f"limit_type must be one of {dbp.LIMIT_TYPES}; got {self.limit_type!r}")
    if int(self.limit_side_len) < 32:
      raise UsageError(f"limit_side_len must be >= 32; got {self.limit_side_len}")
    if int(self.max_side_limit) < 32:
      raise UsageError(f"max_side_limit must be >= 32; got {self.max_side_limit}")


class TextDetector:
  """A detector network with PaddleOCR's pre- and post-processing.

  forward: x f32[1, H, W, 3] -> probability map f32[1, H, W] (textrec/pipelines/forward.py:
  JAX or onnxruntime). pad_to: input sides are padded up to a multiple of this (32 = no
  padding beyond the network's own multiple of 32).
  """

  def __init__(self, model_name: str, forward, source: str = "", mean=IMAGENET_MEAN,
               std=IMAGENET_STD, pad_to: int = 32):
    if pad_to < 32 or pad_to % 32:
      raise UsageError(f"pad_to must be a multiple of 32; got {pad_to}")
    self.model_name = model_name
    self.forward = forward
    self.source = source
    self.mean = np.asarray(mean, np.float32)
    self.std = np.asarray(std, np.float32)
    self.pad_to = int(pad_to)

  def __repr__(self) -> str:
    return f"TextDetector({self.model_name!r}, source={self.source!r})"

  @property
  def num_compiled(self) -> int:
    return getattr(self.forward, "num_compiled", 0)

  def prob_map(self, img: np.ndarray, params: DetParams = DetParams()) -> np.ndarray:
    """BGR uint8 [H, W, 3] -> the shrink (text probability) map f32[h, w] at the resized
    size (`det_postprocess.det_size`)."""
    resized = dbp.resize_for_det(img, params.limit_side_len, params.limit_type,
                                 params.max_side_limit)
    h, w = resized.shape[:2]
    ph, pw = -(-h // self.pad_to) * self.pad_to, -(-w // self.pad_to) * self.pad_to
    x = np.zeros((1, ph, pw, 3), np.float32)
    x[0, :h, :w] = dbp.normalize(resized, self.mean, self.std)
    return self.forward(x)[0, :h, :w]

  def __call__(self, img: np.ndarray, params: DetParams = DetParams()
               ) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 [H, W, 3] -> (quads f32[N, 4, 2], scores f32[N]) in reading order."""
    src_hw = img.shape[:2]
    if src_hw[0] + src_hw[1] < 64:  # resize_for_det pads such images: boxes are in its frame
      src_hw = (max(32, src_hw[0]), max(32, src_hw[1]))
    boxes, scores = dbp.db_boxes(self.prob_map(img, params), src_hw, params.db)
    boxes, kept = dbp.filter_boxes(boxes, img.shape[:2])
    order = dbp.reading_order(boxes)
    return boxes[order], np.asarray([scores[kept[i]] for i in order], np.float32)


def load_detector(name: str = "PP-OCRv4_mobile_det", model_dir: str | os.PathLike | None = None,
                  backend: str = "auto", precision: str = "f32", **kwargs) -> TextDetector:
  """A TextDetector with the official weights (model_dir None: imported from the ONNX in
  rapidocr-onnxruntime), a Paddle inference directory's or a textrec export's, on `backend`
  at `precision` (forward.load_forward)."""
  fwd, source = forward.load_forward(name, "det", model_dir, backend, precision)
  return TextDetector(name, fwd, source=source, **kwargs)
