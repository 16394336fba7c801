"""/ocr's pictures as PaddleX's serving makes them: ocrImage (the pipeline's OCR drawing,
textrec.pipelines.ocr_result.draw_ocr), docPreprocessingImage (the document preprocessor's
drawing: input | turned | unwarped side by side, captioned below), inputImage (the page as
received); each scaled down to fit 2000 x 2000 (PaddleX's max_output_img_size) and encoded as
base64 JPEG by OpenCV (PaddleX's postprocess_image)."""
from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from textrec.inference import results as rec_results
from textrec.pipelines.ocr_result import draw_ocr

MAX_OUTPUT_SIZE = (2000, 2000)  # PaddleX's DEFAULT_MAX_OUTPUT_IMG_SIZE (height, width)
CAPTION_H = 25                  # PaddleX's caption strip under the preprocessing drawing


def jpeg_b64(img_bgr: np.ndarray, max_size: tuple[int, int] = MAX_OUTPUT_SIZE) -> str:
  """BGR uint8 [H, W, 3] -> base64 JPEG, scaled (aspect kept) to fit max_size."""
  h, w = img_bgr.shape[:2]
  if w > max_size[1] or h > max_size[0]:
    f = max_size[0] / w if w / h > max_size[0] / max_size[1] else max_size[1] / h
    img_bgr = cv2.resize(img_bgr, (int(f * w), int(f * h)))
  ok, buf = cv2.imencode(".jpg", img_bgr)
  if not ok:
    raise ValueError(f"JPEG encoding failed for a {w}x{h} picture")
  return base64.b64encode(buf.tobytes()).decode("ascii")


def _bgr(img: Image.Image) -> np.ndarray:
  return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])


def draw_doc_preprocessing(original: np.ndarray, turned: np.ndarray, output: np.ndarray,
                           angle: int, use_orientation: bool, use_unwarping: bool
                           ) -> np.ndarray:
  """The three stages side by side on white, each captioned: BGR uint8 [max h + 25, sum w, 3]."""
  panels = [original, turned, output]
  captions = ["Original Image", f"Rotated Image ({use_orientation}, {angle})",
              f"Unwarping Image ({use_unwarping})"]
  h = max(p.shape[0] for p in panels)
  out = Image.new("RGB", (sum(p.shape[1] for p in panels), h + CAPTION_H), (255, 255, 255))
  draw = ImageDraw.Draw(out)
  x = 0
  for p, text in zip(panels, captions):
    out.paste(Image.fromarray(np.ascontiguousarray(p[:, :, ::-1])), (x, 0))
    size = 20
    font = rec_results.get_font(size)
    while size > 6 and font.getbbox(text)[2] > p.shape[1] - 10:
      size -= 1
      font = rec_results.get_font(size)
    draw.text((x + 10, h + 2), text, fill=(0, 0, 0), font=font)
    x += p.shape[1]
  return _bgr(out)


def pictures(page: np.ndarray, det_img: np.ndarray, pruned: dict[str, Any],
             doc: dict[str, Any] | None) -> dict[str, str]:
  """One page's pictures (base64 JPEG) by PaddleX's field names. page: the page as received;
  det_img: what detection saw (after document preprocessing); pruned: the page's result
  (rec_polys, rec_texts, model_settings, doc_preprocessor_res); doc: the pipeline's
  doc_preprocessor_res (output_img), or None."""
  polys = pruned.get("rec_polys")
  polys = np.asarray(np.zeros((0, 4, 2)) if polys is None else polys, np.float32).reshape(-1, 4, 2)
  out = {"ocrImage": jpeg_b64(_bgr(draw_ocr(det_img, polys, list(pruned.get("rec_texts", []))))),
         "inputImage": jpeg_b64(page)}
  if pruned.get("model_settings", {}).get("use_doc_preprocessor"):
    d = pruned.get("doc_preprocessor_res", {})
    settings = d.get("model_settings", {})
    turned = (doc or {}).get("output_img", det_img)
    out["docPreprocessingImage"] = jpeg_b64(draw_doc_preprocessing(
        page, turned, turned, int(d.get("angle", -1)),
        bool(settings.get("use_doc_orientation_classify")),
        bool(settings.get("use_doc_unwarping"))))
  return out
