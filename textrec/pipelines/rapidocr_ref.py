"""RapidOCR 1.4.4 (`rapidocr-onnxruntime`: the official PP-OCRv4 det, v2.0 cls and PP-OCRv4
rec ONNX files in onnxruntime) set to our OCR settings, and box matching: the reference the
OCR pipeline is compared with (tests, experiments/ocr_pipeline, scripts/bench_ocr.py).

RapidOCR's own config.yaml differs from PaddleOCR's defaults (detection mean/std 0.5,
use_dilation, limit_type "min" 736, box_thresh 0.5, unclip 1.6, text_score 0.5), and with
limit_type "max" it ignores limit_side_len (960 / 1500 / 2000 by image size), so its resize is
replaced by PaddleOCR's `DetResizeForTest` with our settings.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

# RapidOCR 1.4.4's config.yaml in the OCR pipeline's parameter names.
RAPIDOCR_DEFAULTS = dict(text_det_limit_side_len=736, text_det_limit_type="min",
                         text_det_thresh=0.3, text_det_box_thresh=0.5,
                         text_det_unclip_ratio=1.6, text_rec_score_thresh=0.5)
RAPIDOCR_MEAN = RAPIDOCR_STD = (0.5, 0.5, 0.5)


def rapidocr_engine(params: dict[str, Any], mean: Sequence[float], std: Sequence[float],
                    use_dilation: bool = False, cls_thresh: float = 0.9):
  """A RapidOCR engine set to `params` (OCRParams' text_det_* / text_rec_score_thresh
  fields) and the given detection normalisation."""
  from rapidocr_onnxruntime import RapidOCR  # pylint: disable=g-import-not-at-top
  from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess  # pylint: disable=g-import-not-at-top

  eng = RapidOCR()
  det = eng.text_det
  side, kind = int(params["text_det_limit_side_len"]), str(params["text_det_limit_type"])
  det.get_preprocess = lambda max_wh: DetPreProcess(side, kind, list(mean), list(std))
  post = det.postprocess_op
  post.thresh = float(params["text_det_thresh"])
  post.box_thresh = float(params["text_det_box_thresh"])
  post.unclip_ratio = float(params["text_det_unclip_ratio"])
  post.dilation_kernel = np.array([[1, 1], [1, 1]]) if use_dilation else None
  eng.text_score = float(params["text_rec_score_thresh"])
  eng.text_cls.cls_thresh = float(cls_thresh)
  return eng


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
  """IoU of two convex quads [4, 2]."""
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  inter, _ = cv2.intersectConvexConvex(a, b)
  union = cv2.contourArea(a) + cv2.contourArea(b) - inter
  return float(inter / union) if union > 0 else 0.0


def match_boxes(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray], iou_min: float = 0.8
                ) -> list[tuple[int, int, float]]:
  """One-to-one pairs (i, j, IoU) with IoU >= iou_min, taken greedily by IoU."""
  pairs = sorted(((quad_iou(a, b), i, j) for i, a in enumerate(ours)
                  for j, b in enumerate(theirs)), reverse=True)
  used_i, used_j, out = set(), set(), []
  for iou, i, j in pairs:
    if iou < iou_min:
      break
    if i not in used_i and j not in used_j:
      used_i.add(i)
      used_j.add(j)
      out.append((i, j, iou))
  return out
