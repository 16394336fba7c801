"""The references the OCR pipeline is compared with (tests, experiments/ocr_pipeline,
scripts/bench_ocr.py), and box matching.

`ReferenceOCR(ocr_version)`: onnxruntime on a generation's official ONNX files
(official_files.onnx_path) with PaddleX's OCR-pipeline steps at that generation's defaults
(textrec/pipelines/ocr_versions.py), written here or taken from RapidOCR 1.4.4 (PaddleOCR's
code): document orientation (short side to 256, centre crop 224, RGB, ImageNet statistics,
the likeliest of 0/90/180/270, the image turned that far counter-clockwise), DetResizeForTest
with max_side_limit, DBPostProcess + box filter + reading order + crops (RapidOCR's), text-line
orientation (v4: RapidOCR's v2.0 classifier; v5/v6: PP-LCNet_x1_0_textline_ori on crops
resized to 160 x 80, RGB, ImageNet statistics, the likelier class), recognition (RapidOCR's
batches of 6 by aspect ratio, greedy CTC).

`rapidocr_engine`: RapidOCR 1.4.4 (the official PP-OCRv4 det, v2.0 cls and PP-OCRv4 rec ONNX
files in onnxruntime) set to our OCR settings.

RapidOCR's own config.yaml differs from PaddleOCR's defaults (detection mean/std 0.5,
use_dilation, limit_type "min" 736, box_thresh 0.5, unclip 1.6, text_score 0.5), and with
limit_type "max" it ignores limit_side_len (960 / 1500 / 2000 by image size), so its resize is
replaced by PaddleOCR's `DetResizeForTest` with our settings.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from textrec.formats import official_files
from textrec.pipelines import ocr_versions, rotate

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


_IMAGENET = (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32))


def _session(path: str, threads: int = 2):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  so = ort.SessionOptions()
  so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
  so.log_severity_level = 3
  so.add_session_config_entry("session.intra_op.allow_spinning", "0")
  sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
  name = sess.get_inputs()[0].name
  return lambda x: sess.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def _imagenet_chw(rgb: np.ndarray) -> np.ndarray:
  return ((rgb.astype(np.float32) / 255.0 - _IMAGENET[0]) / _IMAGENET[1]).transpose(2, 0, 1)


def det_resize(img: np.ndarray, limit_side_len: int, limit_type: str, max_side_limit: int
               ) -> np.ndarray:
  """PaddleX's DetResizeForTest (type 0), written from its description."""
  h, w = img.shape[:2]
  if h + w < 64:
    pad = np.zeros((max(32, h), max(32, w), 3), np.uint8)
    pad[:h, :w] = img
    img, (h, w) = pad, pad.shape[:2]
  if limit_type == "max":
    ratio = float(limit_side_len) / max(h, w) if max(h, w) > limit_side_len else 1.0
  elif limit_type == "min":
    ratio = float(limit_side_len) / min(h, w) if min(h, w) < limit_side_len else 1.0
  else:
    ratio = float(limit_side_len) / max(h, w)
  rh, rw = int(h * ratio), int(w * ratio)
  if max(rh, rw) > max_side_limit:
    r2 = float(max_side_limit) / max(rh, rw)
    rh, rw = int(rh * r2), int(rw * r2)
  rh, rw = max(int(round(rh / 32) * 32), 32), max(int(round(rw / 32) * 32), 32)
  return cv2.resize(img, (rw, rh))


class ReferenceOCR:
  """The official ONNX files of `ocr_version` with PaddleX's steps (module doc), at that
  generation's defaults (PaddleX's names, as OCRParams) overridden by `params`.

  ref(img BGR uint8) -> dict(angle, polys f32[N, 4, 2], texts, scores) of the lines kept.
  """

  def __init__(self, ocr_version: str = "PP-OCRv5", threads: int = 2, **params):
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess  # pylint: disable=g-import-not-at-top
    from rapidocr_onnxruntime.ch_ppocr_rec.text_recognize import TextRecognizer  # pylint: disable=g-import-not-at-top

    gen = ocr_versions.get(ocr_version)
    self.gen = gen
    self.p = dict(use_doc_orientation_classify=True, use_textline_orientation=True,
                  text_rec_score_thresh=0.0, **gen.params)
    self.p.update({k: v for k, v in params.items() if v is not None})
    self.det = _session(official_files.onnx_path(gen.det_model), threads)
    self.post = DBPostProcess(thresh=self.p["text_det_thresh"],
                              box_thresh=self.p["text_det_box_thresh"],
                              max_candidates=gen.max_candidates,
                              unclip_ratio=self.p["text_det_unclip_ratio"])
    rec_cfg = dict(model_path=official_files.onnx_path(gen.rec_model), rec_img_shape=[3, 48, 320],
                   rec_batch_num=6, intra_op_num_threads=threads, inter_op_num_threads=1)
    dict_path = official_files.dict_path(gen.rec_model)
    if dict_path:
      rec_cfg["rec_keys_path"] = dict_path
    self.rec = TextRecognizer(rec_cfg)
    self.doc = _session(official_files.onnx_path(ocr_versions.DOC_ORIENTATION_MODEL), threads)
    self.cls = _session(official_files.onnx_path(gen.cls_model), threads)
    self.engine = rapidocr_engine(  # its v2.0 classifier, crops, reading order, box filter
        {k: self.p[k] for k in RAPIDOCR_DEFAULTS}, _IMAGENET[0], _IMAGENET[1],
        cls_thresh=gen.textline_orientation_thresh)

  def doc_angle(self, img: np.ndarray) -> int:
    h, w = img.shape[:2]
    s = 256.0 / min(h, w)
    small = cv2.resize(img, (int(round(w * s)), int(round(h * s))))
    y0, x0 = (small.shape[0] - 224) // 2, (small.shape[1] - 224) // 2
    crop = small[y0:y0 + 224, x0:x0 + 224, ::-1]
    return (0, 90, 180, 270)[int(np.argmax(self.doc(_imagenet_chw(crop)[None])[0]))]

  def textline_flips(self, crops: list[np.ndarray]) -> list[int]:
    if self.gen.cls_model == "ch_ppocr_mobile_v2.0_cls":
      _, res, _ = self.engine.text_cls(crops)
      return [int(label == "180" and score > self.gen.textline_orientation_thresh)
              for label, score in res]
    out = []
    for s in range(0, len(crops), 6):
      x = np.stack([_imagenet_chw(cv2.resize(c, (160, 80))[:, :, ::-1]) for c in crops[s:s + 6]])
      out += [int(i) for i in np.argmax(self.cls(x), axis=1)]
    return out

  def __call__(self, img: np.ndarray) -> dict[str, Any]:
    p, angle = self.p, -1
    if p["use_doc_orientation_classify"]:
      angle = self.doc_angle(img)
      img = rotate.rotate(img, angle)  # PaddleX's rotate_image (one black edge row/column)
    x = det_resize(img, p["text_det_limit_side_len"], p["text_det_limit_type"],
                   p["text_det_max_side_limit"])
    prob = self.det(_imagenet_chw(x)[None])  # the BGR image as read, as PaddleX's det
    src_hw = img.shape[:2]
    if src_hw[0] + src_hw[1] < 64:
      src_hw = (max(32, src_hw[0]), max(32, src_hw[1]))
    boxes, _ = self.post(prob, src_hw)
    boxes = self.engine.text_det.filter_tag_det_res(np.asarray(boxes, np.float32), img.shape[:2])
    if len(boxes) == 0:
      return dict(angle=angle, polys=np.zeros((0, 4, 2), np.float32), texts=[], scores=[],
                  image=img)
    boxes = np.asarray(self.engine.sorted_boxes(boxes), np.float32)
    crops = self.engine.get_crop_img_list(img, [b.copy() for b in boxes])
    if p["use_textline_orientation"]:
      turn = ((lambda c: cv2.rotate(c, cv2.ROTATE_180))  # RapidOCR's, for the v2.0 model
              if self.gen.cls_model == "ch_ppocr_mobile_v2.0_cls"
              else (lambda c: rotate.rotate(c, 180)))   # PaddleX's rotate_image
      crops = [turn(c) if f else c for c, f in zip(crops, self.textline_flips(crops))]
    read, _ = self.rec(crops)
    keep = [i for i, (_, s) in enumerate(read) if s >= p["text_rec_score_thresh"]]
    return dict(angle=angle, polys=boxes[keep], texts=[read[i][0] for i in keep],
                scores=[float(read[i][1]) for i in keep], image=img)


def compare(ours_polys, ours_texts, ref: dict[str, Any], iou_min: float = 0.8
            ) -> tuple[int, int, int, int]:
  """-> (our lines, the reference's, boxes matched at IoU >= iou_min, matched with the same
  text)."""
  pairs = match_boxes(list(ours_polys), list(ref["polys"]), iou_min)
  same = sum(ours_texts[i] == ref["texts"][j] for i, j, _ in pairs)
  return len(ours_polys), len(ref["polys"]), len(pairs), same
