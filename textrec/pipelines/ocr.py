"""The General OCR pipeline (PaddleX's "OCR"): text detection -> crops -> optional text-line
orientation -> recognition -> lines over a score threshold.

  pipeline = textrec.create_pipeline("OCR")                # official PP-OCRv4 models
  for res in pipeline.predict("photo.jpg"):
    res.print(); res.save_to_img("out/"); res.save_to_json("out/")

Parameters take PaddleX's OCR-pipeline names and its defaults for PP-OCRv4, on both
`create_pipeline` (defaults) and `predict` (this call only). Detected quads are put in
PaddleOCR's reading order, cropped with a perspective warp (textrec/pipelines/crops.py),
turned 180 degrees when the orientation classifier says so, and recognised in batches.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Iterator

import numpy as np

from textrec.errors import UnknownNameError, UsageError
from textrec.inference import inputs as inputs_lib
from textrec.inference import predictor
from textrec.pipelines import crops as crops_lib
from textrec.pipelines import det_postprocess as dbp
from textrec.pipelines import text_detection
from textrec.pipelines.ocr_result import OCRResult
from textrec.pipelines.orientation import TextlineOrientation, load_orientation
from textrec.pipelines.text_detection import DetParams, TextDetector, load_detector

PIPELINES = ("OCR",)


@dataclasses.dataclass(frozen=True)
class OCRParams:
  """What `predict` may change per call (PaddleX's names; PaddleX's PP-OCRv4 defaults)."""

  use_textline_orientation: bool = True
  text_det_limit_side_len: int = 960
  text_det_limit_type: str = "max"
  text_det_thresh: float = 0.3
  text_det_box_thresh: float = 0.6
  text_det_unclip_ratio: float = 2.0
  text_rec_score_thresh: float = 0.0

  def det_params(self, db_extra: dict[str, Any]) -> DetParams:
    db = dbp.DBParams(thresh=float(self.text_det_thresh),
                      box_thresh=float(self.text_det_box_thresh),
                      unclip_ratio=float(self.text_det_unclip_ratio), **db_extra)
    return DetParams(int(self.text_det_limit_side_len), str(self.text_det_limit_type), db)


class OCRPipeline:
  """Detector + optional orientation classifier + recognizer (module doc)."""

  def __init__(self, detector: TextDetector, recognizer, orientation: TextlineOrientation | None,
               params: OCRParams = OCRParams(), text_recognition_batch_size: int = 6,
               db_extra: dict[str, Any] | None = None):
    self.detector = detector
    self.recognizer = recognizer
    self.orientation = orientation
    self.params = params
    self.rec_batch_size = int(text_recognition_batch_size)
    self.db_extra = dict(db_extra or {})
    self.params.det_params(self.db_extra)  # checks the defaults now, not at the first image
    if params.use_textline_orientation and orientation is None:
      raise UsageError("use_textline_orientation=True needs an orientation model")

  def __repr__(self) -> str:
    return (f"OCRPipeline(det={self.detector!r}, cls={self.orientation!r}, "
            f"rec={self.recognizer!r})")

  def _params(self, overrides: dict[str, Any]) -> OCRParams:
    unknown = set(overrides) - {f.name for f in dataclasses.fields(OCRParams)}
    if unknown:
      raise TypeError(f"predict() got unknown parameters {sorted(unknown)}; known: "
                      f"{[f.name for f in dataclasses.fields(OCRParams)]}")
    p = dataclasses.replace(self.params, **{k: v for k, v in overrides.items() if v is not None})
    if p.use_textline_orientation and self.orientation is None:
      raise UsageError("use_textline_orientation=True: this pipeline was created without an "
                       "orientation model (create_pipeline(..., use_textline_orientation=True))")
    return p

  def ocr_image(self, img: np.ndarray, params: OCRParams, index: int = 0,
                input_path: str | None = None) -> OCRResult:
    """BGR uint8 [H, W, 3] -> OCRResult."""
    det = params.det_params(self.db_extra)
    t0 = time.perf_counter()
    quads, det_scores = self.detector(img, det)
    t1 = time.perf_counter()
    crops = [crops_lib.crop_quad(img, q) for q in quads]
    angles = [-1] * len(crops)
    if params.use_textline_orientation and crops:
      crops, angles, _ = self.orientation(crops)
    t2 = time.perf_counter()
    read = self.recognizer.recognize(crops, self.rec_batch_size) if crops else []
    t3 = time.perf_counter()
    keep = [i for i, (_, s) in enumerate(read) if s >= params.text_rec_score_thresh]
    return OCRResult(
        index=index, input_path=input_path, dt_polys=quads.astype(np.int32),
        dt_scores=[float(s) for s in det_scores],
        rec_texts=[read[i][0] for i in keep], rec_scores=[float(read[i][1]) for i in keep],
        rec_polys=quads[keep].astype(np.int32).reshape(-1, 4, 2),
        textline_orientation_angles=angles,
        text_det_params={"limit_side_len": det.limit_side_len, "limit_type": det.limit_type,
                         "thresh": det.db.thresh, "box_thresh": det.db.box_thresh,
                         "unclip_ratio": det.db.unclip_ratio},
        text_rec_score_thresh=float(params.text_rec_score_thresh),
        use_textline_orientation=bool(params.use_textline_orientation), input_img=img,
        timings={"det": t1 - t0, "cls": t2 - t1, "rec": t3 - t2})

  def predict(self, input: Any, **params) -> Iterator[OCRResult]:  # pylint: disable=redefined-builtin
    """Streams one OCRResult per input image, in order. `input`: a path (image or
    directory, read lazily), a BGR array [H, W(, C)] or a list of these. `params`: any of
    OCRParams' fields, for this call. A bad image yields a result with `.error` set."""
    p = self._params(params)
    for it in inputs_lib.iter_inputs(input):
      if it.error is not None:
        yield OCRResult(it.index, it.input_path, error=it.error)
      else:
        yield self.ocr_image(it.image, p, it.index, it.input_path)

  __call__ = predict


def create_pipeline(pipeline: str = "OCR", *, rec_model: str = "PP-OCRv4_mobile_rec",
                    rec_model_dir: str | os.PathLike | None = None,
                    det_model: str = "PP-OCRv4_mobile_det",
                    det_model_dir: str | os.PathLike | None = None,
                    cls_model: str = "ch_ppocr_mobile_v2.0_cls",
                    cls_model_dir: str | os.PathLike | None = None,
                    text_recognition_batch_size: int = 6,
                    textline_orientation_batch_size: int = 6,
                    textline_orientation_thresh: float = 0.9,
                    det_mean=None, det_std=None, det_pad_to: int = 32,
                    text_det_use_dilation: bool = False, text_det_score_mode: str = "fast",
                    text_det_max_candidates: int = 1000, rec_dict_path: str | None = None,
                    recognizer=None, **params) -> OCRPipeline:
  """PaddleX's `create_pipeline("OCR")` on textrec's models (module doc).

  rec_model / det_model / cls_model: registered names; *_model_dir: None for the official
  weights, else a Paddle inference directory (any of the three) or any weights
  `create_model` takes (the recognizer); paths may start with `~`. params: OCRParams'
  fields (the defaults of `predict`). det_mean / det_std: detection normalisation (default
  ImageNet's, PaddleOCR's); det_pad_to: pad detection inputs to multiples of this (fewer
  compiled shapes). text_det_use_dilation / score_mode / max_candidates: DBPostProcess's
  other settings.
  recognizer: an existing TextRecognizer to use instead of loading rec_model.
  """
  if pipeline not in PIPELINES:
    raise UnknownNameError(f"unknown pipeline {pipeline!r}; available: {list(PIPELINES)}")
  home = lambda p: os.path.expanduser(p) if p else None  # noqa: E731  (`~/...` paths)
  rec_model_dir, det_model_dir = home(rec_model_dir), home(det_model_dir)
  cls_model_dir, rec_dict_path = home(cls_model_dir), home(rec_dict_path)

  p = OCRParams(**params)
  db_extra = dict(use_dilation=bool(text_det_use_dilation), score_mode=str(text_det_score_mode),
                  max_candidates=int(text_det_max_candidates))
  p.det_params(db_extra)  # bad values fail before any weights are read
  if recognizer is None:
    recognizer = predictor.create_model(rec_model, model_dir=rec_model_dir,
                                        batch_size=text_recognition_batch_size,
                                        dict_path=rec_dict_path)
  detector = load_detector(det_model, det_model_dir,
                           mean=text_detection.IMAGENET_MEAN if det_mean is None else det_mean,
                           std=text_detection.IMAGENET_STD if det_std is None else det_std,
                           pad_to=det_pad_to)
  orientation = None
  if p.use_textline_orientation or cls_model_dir:
    orientation = load_orientation(cls_model, cls_model_dir,
                                   batch_size=textline_orientation_batch_size,
                                   thresh=textline_orientation_thresh)
  return OCRPipeline(detector, recognizer, orientation, p, text_recognition_batch_size,
                     db_extra)
