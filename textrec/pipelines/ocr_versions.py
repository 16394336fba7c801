"""PaddleOCR 3's `ocr_version` for the OCR pipeline: each generation's models and defaults.

Where they differ from PaddleOCR 3 / PaddleX, it is because no PyPI wheel ships the official
weights (textrec/formats/official_files.py):
  PP-OCRv5: PaddleX's OCR.yaml (read at PaddleX commit 12b0a0504213) names PP-OCRv5_mobile_det
    and PP-OCRv5_mobile_rec (PaddleOCR 3's `ocr_version="PP-OCRv5"` picks the *server* det and
    rec, whose weights are not reachable) and PP-LCNet_x0_25_textline_ori (we take
    PP-LCNet_x1_0_textline_ori, the one shipped). Detection: limit_side_len 736, limit_type
    "min", max_side_limit 4000, thresh 0.3, box_thresh 0.6, unclip_ratio 1.5.
  PP-OCRv6: PaddleOCR 3.7 picks PP-OCRv6_medium_det / _rec; we take the small ones. Its
    pipeline passes OCR.yaml's detection values to every generation's detector, so those are
    the v5 ones; only max_candidates (not a pipeline setting) comes from the v6 det's
    inference.yml (3000; its thresh 0.2 / box_thresh 0.4-0.45 / unclip 1.4 are what the model
    alone uses, not the pipeline).
  PP-OCRv4: textrec's earlier defaults: PP-OCRv4 mobile det / rec, the v2.0 text-line
    classifier (turns a line above a 0.9 "180" probability), PaddleX's PP-OCRv4-era OCR.yaml
    detection values (960, "max", 0.3, 0.6, 2.0).
PaddleX's text-line classifiers take the likelier class (threshold 0); the document
preprocessor (PP-LCNet_x1_0_doc_ori) is on for every generation, as in OCR.yaml.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from textrec.errors import UsageError

DEFAULT = "PP-OCRv5"
DOC_ORIENTATION_MODEL = "PP-LCNet_x1_0_doc_ori"  # every generation's (OCR.yaml)


@dataclasses.dataclass(frozen=True)
class Generation:
  det_model: str
  rec_model: str
  cls_model: str
  params: dict[str, Any]   # OCRParams fields
  textline_orientation_thresh: float = 0.0
  max_candidates: int = 1000


_V5_DET = dict(text_det_limit_side_len=736, text_det_limit_type="min",
               text_det_max_side_limit=4000, text_det_thresh=0.3, text_det_box_thresh=0.6,
               text_det_unclip_ratio=1.5)

VERSIONS = {
    "PP-OCRv4": Generation(
        "PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec", "ch_ppocr_mobile_v2.0_cls",
        dict(text_det_limit_side_len=960, text_det_limit_type="max",
             text_det_max_side_limit=4000, text_det_thresh=0.3, text_det_box_thresh=0.6,
             text_det_unclip_ratio=2.0), textline_orientation_thresh=0.9),
    "PP-OCRv5": Generation("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec",
                           "PP-LCNet_x1_0_textline_ori", dict(_V5_DET)),
    "PP-OCRv6": Generation("PP-OCRv6_small_det", "PP-OCRv6_small_rec",
                           "PP-LCNet_x1_0_textline_ori", dict(_V5_DET), max_candidates=3000),
}


def get(ocr_version: str | None) -> Generation:
  """The generation named `ocr_version` (None: PP-OCRv5); UsageError naming the choices."""
  name = DEFAULT if ocr_version is None else ocr_version
  if name not in VERSIONS:
    raise UsageError(f"ocr_version must be one of {list(VERSIONS)}; got {ocr_version!r}")
  return VERSIONS[name]


def of_det(det_model: str) -> Generation:
  """The generation whose detector is `det_model`, else the one whose name begins it
  (PP-OCRv6_tiny_det: PP-OCRv6), so every detector takes its generation's pre- and
  post-processing; UsageError for a detector of none."""
  for gen in VERSIONS.values():
    if gen.det_model == det_model:
      return gen
  for name, gen in VERSIONS.items():
    if det_model.startswith(name + "_"):
      return gen
  raise UsageError(f"{det_model!r} belongs to no ocr_version ({list(VERSIONS)}): its detection "
                   "settings are unknown")
