"""Text detection pre- and post-processing, as PaddleOCR's `DetResizeForTest` and
`DBPostProcess` (ppocr/postprocess/db_postprocess.py) with tools/infer/predict_det.py's box
filter: pure numpy / OpenCV functions, polygon offsets by pyclipper.

  resize_for_det(img)            BGR [H, W, 3] -> resized [h, w, 3] (sides multiples of 32)
  db_boxes(prob, ...)            shrink map [h, w] -> quads [N, 4, 2] (source pixels), scores
  filter_boxes(boxes, hw)        clockwise corners, clipped, tiny ones dropped
  reading_order(boxes)           PaddleOCR's reading order (top to bottom, then left to right)
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pyclipper

from textrec.errors import UsageError

LIMIT_TYPES = ("max", "min", "resize_long")
SCORE_MODES = ("fast", "slow")
MIN_SIZE = 3  # DBPostProcess.min_size: shorter sides are dropped (before and after unclip)


@dataclasses.dataclass(frozen=True)
class DBParams:
  """DBPostProcess settings (PaddleX's names for the OCR pipeline in comments)."""

  thresh: float = 0.3          # text_det_thresh: a pixel is text when its probability > this
  box_thresh: float = 0.6      # text_det_box_thresh: mean probability a box must reach
  unclip_ratio: float = 2.0    # text_det_unclip_ratio: how far a box is grown
  max_candidates: int = 1000
  use_dilation: bool = False   # dilate the bitmap with a 2x2 kernel first
  score_mode: str = "fast"     # "fast": mean inside the box; "slow": inside the contour

  def __post_init__(self):
    if self.score_mode not in SCORE_MODES:
      raise UsageError(f"score_mode must be one of {SCORE_MODES}; got {self.score_mode!r}")
    for name in ("thresh", "box_thresh"):
      v = getattr(self, name)
      if not 0.0 <= v <= 1.0:
        raise UsageError(f"{name} must be in [0, 1]; got {v}")
    if not self.unclip_ratio > 0:
      raise UsageError(f"unclip_ratio must be > 0; got {self.unclip_ratio}")


def det_size(h: int, w: int, limit_side_len: int = 960, limit_type: str = "max",
             max_side_limit: int = 4000) -> tuple[int, int]:
  """DetResizeForTest (type 0): the network's input size for an h x w image.

  "max": the longer side is brought down to limit_side_len (never up); "min": the shorter
  side up to limit_side_len (never down); "resize_long": the longer side to it either way.
  Sides are truncated to whole pixels; if the longer one is then over max_side_limit, both
  are scaled down so it is max_side_limit (truncated again), as PaddleX does. Each side is
  then rounded to a multiple of 32 (at least 32).
  """
  if limit_type == "max":
    ratio = limit_side_len / max(h, w) if max(h, w) > limit_side_len else 1.0
  elif limit_type == "min":
    ratio = limit_side_len / min(h, w) if min(h, w) < limit_side_len else 1.0
  elif limit_type == "resize_long":
    ratio = limit_side_len / max(h, w)
  else:
    raise UsageError(f"limit_type must be one of {LIMIT_TYPES}; got {limit_type!r}")
  rh, rw = int(h * ratio), int(w * ratio)
  if max(rh, rw) > max_side_limit:
    cap = max_side_limit / max(rh, rw)
    rh, rw = int(rh * cap), int(rw * cap)
  return max(int(round(rh / 32) * 32), 32), max(int(round(rw / 32) * 32), 32)


def resize_for_det(img: np.ndarray, limit_side_len: int = 960, limit_type: str = "max",
                   max_side_limit: int = 4000) -> np.ndarray:
  """BGR uint8 [H, W, 3] -> [h, w, 3] resized (bilinear) to `det_size`. An image whose sides
  add up to less than 64 is first padded with black to 32 x 32 at least, as PaddleX does."""
  h, w = img.shape[:2]
  if h + w < 64:
    pad = np.zeros((max(32, h), max(32, w), img.shape[2]), img.dtype)
    pad[:h, :w] = img
    img, (h, w) = pad, pad.shape[:2]
  rh, rw = det_size(h, w, limit_side_len, limit_type, max_side_limit)
  return cv2.resize(img, (rw, rh))


def normalize(img: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] -> f32 (x / 255 - mean) / std, per channel in the image's own order."""
  scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
  shift = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
  return img.astype(np.float32) * scale + shift


# ----------------------------------------------------------------------------- boxes


def _min_box(points: np.ndarray) -> tuple[np.ndarray, float]:
  """The minimum-area rectangle around points [K, 1|2, 2]: corners f32[4, 2] ordered
  top-left, top-right, bottom-right, bottom-left (by x, then y within each pair), and its
  shorter side."""
  rect = cv2.minAreaRect(points)
  pts = cv2.boxPoints(rect)
  pts = pts[np.argsort(pts[:, 0], kind="stable")]
  left = pts[:2] if pts[1, 1] > pts[0, 1] else pts[1::-1]    # [top-left, bottom-left]
  right = pts[2:] if pts[3, 1] > pts[2, 1] else pts[:1:-1]   # [top-right, bottom-right]
  return np.stack([left[0], right[0], right[1], left[1]]), float(min(rect[1]))


def _mean_inside(prob: np.ndarray, poly: np.ndarray) -> float:
  """Mean of prob over the pixels of polygon poly [K, 2] (drawn by cv2.fillPoly, its
  vertices truncated to ints) within the polygon's bounding box, clipped to the map."""
  h, w = prob.shape
  x0 = min(max(int(np.floor(poly[:, 0].min())), 0), w - 1)
  x1 = min(max(int(np.ceil(poly[:, 0].max())), 0), w - 1)
  y0 = min(max(int(np.floor(poly[:, 1].min())), 0), h - 1)
  y1 = min(max(int(np.ceil(poly[:, 1].max())), 0), h - 1)
  mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
  shifted = (poly - np.array([x0, y0], poly.dtype)).astype(np.int32)
  cv2.fillPoly(mask, shifted.reshape(1, -1, 2), 1)
  return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def unclip(box: np.ndarray, ratio: float) -> np.ndarray:
  """Grows polygon box [K, 2] by area * ratio / perimeter (round joins, pyclipper) -> the
  grown polygon's points [M, 2] (all rings, as PaddleOCR takes them)."""
  area = cv2.contourArea(box.astype(np.float32))
  length = cv2.arcLength(box.astype(np.float32), True)
  offset = pyclipper.PyclipperOffset()
  offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
  rings = offset.Execute(area * ratio / length)
  if not rings:
    return np.zeros((0, 2), np.float32)
  return np.concatenate([np.asarray(r, np.float32).reshape(-1, 2) for r in rings])


def db_boxes(prob: np.ndarray, src_hw: tuple[int, int], params: DBParams = DBParams()
             ) -> tuple[np.ndarray, list[float]]:
  """DB post-processing of one shrink map prob f32[h, w] (the network's size) ->
  (quads int32[N, 4, 2] in the source image's pixels, their scores).

  Bitmap = prob > thresh (optionally dilated); for each contour (at most max_candidates):
  its minimum-area box (dropped if a side < 3), its score (fast: mean prob in the box; slow:
  in the contour; dropped under box_thresh), grown by `unclip`, boxed again (dropped if a
  side < 5), scaled to the source size, rounded and clipped to [0, size].
  """
  height, width = prob.shape
  src_h, src_w = src_hw
  bitmap = (prob > params.thresh).astype(np.uint8)
  if params.use_dilation:
    bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
  contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
  boxes, scores = [], []
  for contour in contours[:params.max_candidates]:
    corners, short = _min_box(contour)
    if short < MIN_SIZE:
      continue
    if params.score_mode == "fast":
      score = _mean_inside(prob, corners)
    else:
      score = _mean_inside(prob, contour.reshape(-1, 2).astype(np.float32))
    if score < params.box_thresh:
      continue
    grown = unclip(corners, params.unclip_ratio)
    if len(grown) < 3:
      continue
    box, short = _min_box(grown.reshape(-1, 1, 2))
    if short < MIN_SIZE + 2:
      continue
    box[:, 0] = np.clip(np.round(box[:, 0] / width * src_w), 0, src_w)
    box[:, 1] = np.clip(np.round(box[:, 1] / height * src_h), 0, src_h)
    boxes.append(box.astype(np.int32))
    scores.append(score)
  return np.asarray(boxes, np.int32).reshape(-1, 4, 2), scores


def order_clockwise(pts: np.ndarray) -> np.ndarray:
  """Four corners [4, 2] -> f32 [top-left, top-right, bottom-right, bottom-left]: the
  smallest and largest x + y are top-left and bottom-right, the other two are told apart by
  y - x (as PaddleOCR's predict_det)."""
  pts = np.asarray(pts, np.float32)
  s = pts.sum(axis=1)
  first, last = int(np.argmin(s)), int(np.argmax(s))
  rest = np.delete(pts, (first, last), axis=0)
  d = np.diff(rest, axis=1)[:, 0]
  return np.stack([pts[first], rest[int(np.argmin(d))], pts[last], rest[int(np.argmax(d))]])


def filter_boxes(boxes: np.ndarray, img_hw: tuple[int, int]) -> tuple[np.ndarray, list[int]]:
  """Quads [N, 4, 2] -> (f32 [M, 4, 2], indices of the kept boxes): corners put clockwise
  from the top-left, clipped to the image (truncated to whole pixels), boxes 3 px or less
  wide or high dropped."""
  h, w = img_hw
  out, kept = [], []
  for i, box in enumerate(boxes):
    box = order_clockwise(box)
    box[:, 0] = np.trunc(np.clip(box[:, 0], 0, w - 1))
    box[:, 1] = np.trunc(np.clip(box[:, 1], 0, h - 1))
    if int(np.linalg.norm(box[0] - box[1])) <= 3 or int(np.linalg.norm(box[0] - box[3])) <= 3:
      continue
    out.append(box)
    kept.append(i)
  return np.asarray(out, np.float32).reshape(-1, 4, 2), kept


def reading_order(boxes: np.ndarray, same_line: float = 10.0) -> list[int]:
  """Indices of quads [N, 4, 2] in PaddleOCR's reading order (`sorted_boxes`): by the
  top-left corner's (y, x); then a box whose top-left y is within `same_line` px of the
  previous box's and lies left of it moves before it (repeatedly, so a line's boxes run
  left to right)."""
  order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0][1], boxes[i][0][0]))
  for i in range(len(order) - 1):
    for j in range(i, -1, -1):
      a, b = boxes[order[j]][0], boxes[order[j + 1]][0]
      if abs(b[1] - a[1]) < same_line and b[0] < a[0]:
        order[j], order[j + 1] = order[j + 1], order[j]
      else:
        break
  return order
