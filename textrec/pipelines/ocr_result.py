"""Per-image OCR results with PaddleX's OCR-pipeline fields and interface: `.json`,
`.print()`, `.save_to_img()`, `.save_to_json()`.

`save_to_img` draws as PaddleX does: on the left the image with each kept line's quad filled
in a translucent colour, on the right a white panel of the same size with the quads outlined
and each line's text warped into its quad.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from textrec.inference import results as rec_results


@dataclasses.dataclass
class OCRResult(rec_results.ResultFiles):
  """The OCR of one input image. `error` is set (and the lists empty) when it failed.

  dt_polys: every detected quad int[N, 4, 2] (reading order); rec_polys / rec_texts /
  rec_scores: the lines kept (score >= text_rec_score_thresh); rec_boxes: their axis-aligned
  boxes [x_min, y_min, x_max, y_max]; textline_orientation_angles: per detected quad, 1 if it
  was turned 180 degrees, 0 if not, -1 without orientation classification.
  doc_preprocessor_res: None without document preprocessing, else PaddleX's fields:
  model_settings (use_doc_orientation_classify, use_doc_unwarping), angle (the image was
  turned by it counter-clockwise, in {0, 90, 180, 270}; -1 unclassified) and output_img (BGR,
  what detection saw; not part of `.json`). input_img: the image detection saw (drawn by
  save_to_img). timings: seconds spent in document preprocessing / detection / orientation /
  recognition (not part of `.json`). runtime: which backend ran each model and at which
  precision, {"backend": {"det": ..., "cls": ..., "rec": ...}, "precision": ...}; in `.json`'s
  model_settings. page_index: the page of a PDF input (0-based), None for an image; a page's
  files are named `<pdf stem>_<page_index>...` as PaddleX names them.
  """
  img_suffix = "_ocr_res_img"  # PaddleX's name for the OCR drawing
  index: int
  input_path: str | None
  dt_polys: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4, 2), np.int32))
  dt_scores: list[float] = dataclasses.field(default_factory=list)
  rec_texts: list[str] = dataclasses.field(default_factory=list)
  rec_scores: list[float] = dataclasses.field(default_factory=list)
  rec_polys: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4, 2), np.int32))
  textline_orientation_angles: list[int] = dataclasses.field(default_factory=list)
  text_det_params: dict[str, Any] = dataclasses.field(default_factory=dict)
  text_rec_score_thresh: float = 0.0
  use_textline_orientation: bool = False
  doc_preprocessor_res: dict[str, Any] | None = None
  input_img: np.ndarray | None = dataclasses.field(default=None, repr=False)
  timings: dict[str, float] = dataclasses.field(default_factory=dict, repr=False)
  runtime: dict[str, Any] | None = None
  error: str | None = None
  page_index: int | None = None

  @property
  def rec_boxes(self) -> np.ndarray:
    """int[N, 4]: [x_min, y_min, x_max, y_max] of each rec_poly."""
    if not len(self.rec_polys):
      return np.zeros((0, 4), np.int32)
    p = np.asarray(self.rec_polys)
    return np.concatenate([p.min(axis=1), p.max(axis=1)], axis=1).astype(np.int32)

  @property
  def json(self) -> dict[str, Any]:
    res = {
        "input_path": self.input_path,
        "page_index": self.page_index,
        "model_settings": {"use_doc_preprocessor": self.doc_preprocessor_res is not None,
                           "use_textline_orientation": self.use_textline_orientation},
    }
    if self.runtime is not None:
      res["model_settings"].update(self.runtime)
    if self.doc_preprocessor_res is not None:
      d = self.doc_preprocessor_res
      res["doc_preprocessor_res"] = {
          "input_path": None, "page_index": None,
          "model_settings": dict(d["model_settings"]), "angle": int(d["angle"])}
    res.update({
        "dt_polys": np.asarray(self.dt_polys).astype(int).tolist(),
        "text_det_params": dict(self.text_det_params),
        "text_type": "general",
        "textline_orientation_angles": list(self.textline_orientation_angles),
        "text_rec_score_thresh": float(self.text_rec_score_thresh),
        "rec_texts": list(self.rec_texts),
        "rec_scores": [float(s) for s in self.rec_scores],
        "rec_polys": np.asarray(self.rec_polys).astype(int).tolist(),
        "rec_boxes": self.rec_boxes.tolist(),
    })
    if self.error is not None:
      res["error"] = self.error
    return {"res": res}

  def save_to_img(self, save_path: str | os.PathLike) -> str | None:
    """Writes the drawing (see module doc) to a file, or to
    `<dir>/<input stem>_ocr_res_img.png`; None for a failed input."""
    if self.input_img is None:
      return None
    path = self._target(save_path, (".jpg", ".jpeg", ".png", ".bmp"), ".png", self.img_suffix)
    draw_ocr(self.input_img, self.rec_polys, self.rec_texts).save(path)
    return path


def _colour(i: int) -> tuple[int, int, int]:
  rng = np.random.default_rng(i)  # fixed per line: the same drawing every run
  return tuple(int(v) for v in rng.integers(0, 256, 3))


def _text_patch(text: str, w: int, h: int) -> np.ndarray:
  """Black text on white, fitted into a w x h patch (uint8 [h, w]); a quad much taller than
  wide gets the characters stacked vertically."""
  w, h = max(w, 1), max(h, 1)
  rec_results.warn_if_undrawable(text)
  patch = Image.new("L", (w, h), 255)
  draw = ImageDraw.Draw(patch)
  if h > 2 * w and h > 30 and text:
    size = max(8, min(int(w * 0.9), h // max(len(text), 1)))
    font = rec_results.get_font(size)
    y = 0
    for ch in text:
      draw.text((max(0, (w - size) // 2), y), ch, fill=0, font=font)
      y += size
  elif text:
    size = max(8, int(h * 0.8))
    font = rec_results.get_font(size)
    while size > 8 and font.getbbox(text)[2] > w:
      size -= 1
      font = rec_results.get_font(size)
    top = font.getbbox(text)[1]
    draw.text((0, max(0, (h - size) // 2 - top // 2)), text, fill=0, font=font)
  return np.asarray(patch)


def draw_ocr(img_bgr: np.ndarray, polys: np.ndarray, texts: list[str]) -> Image.Image:
  """BGR uint8 [H, W, 3] + quads [N, 4, 2] + texts -> RGB PIL image [H, 2W] (module doc)."""
  h, w = img_bgr.shape[:2]
  rgb = np.ascontiguousarray(img_bgr[:, :, ::-1])
  left = Image.fromarray(rgb).convert("RGB")
  overlay = left.copy()
  panel = np.full((h, w), 255, np.uint8)
  draw_overlay = ImageDraw.Draw(overlay)
  outlines = []
  for i, (poly, text) in enumerate(zip(np.asarray(polys, np.float32), texts)):
    pts = [tuple(map(float, p)) for p in poly]
    draw_overlay.polygon(pts, fill=_colour(i))
    outlines.append((pts, _colour(i)))
    bw = int(max(np.linalg.norm(poly[0] - poly[1]), np.linalg.norm(poly[2] - poly[3])))
    bh = int(max(np.linalg.norm(poly[0] - poly[3]), np.linalg.norm(poly[1] - poly[2])))
    if bw < 2 or bh < 2:
      continue
    patch = _text_patch(text, bw, bh)
    src = np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], np.float32)
    m = cv2.getPerspectiveTransform(src, poly[:4].astype(np.float32))
    warped = cv2.warpPerspective(patch, m, (w, h), flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    panel = np.minimum(panel, warped)
  left = Image.blend(left, overlay, 0.5)
  right = Image.fromarray(panel).convert("RGB")
  draw_right = ImageDraw.Draw(right)
  for pts, colour in outlines:
    draw_right.polygon(pts, outline=colour, width=max(1, min(h, w) // 500 + 1))
  out = Image.new("RGB", (2 * w, h), (255, 255, 255))
  out.paste(left, (0, 0))
  out.paste(right, (w, 0))
  return out
