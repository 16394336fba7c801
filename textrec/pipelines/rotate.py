"""PaddleX's `rotate_image` (its pipelines' components): the image turned counter-clockwise by
`angle` degrees about its centre (w/2, h/2) onto a canvas grown to hold it, bicubic, zeros
outside. For multiples of 90 degrees this is cv2.rotate's result moved by one pixel: the
first row (90), the first column (270) or both (180) are black and the opposite edge's pixels
are lost. The OCR pipeline turns upside-down lines with it (180), the document preprocessor
whole pages (the doc orientation model's angle).
"""
from __future__ import annotations

import cv2
import numpy as np


def rotate(img: np.ndarray, angle: float) -> np.ndarray:
  """img [h, w, ...] uint8 -> turned counter-clockwise by angle in [0, 360)."""
  if not 0 <= angle < 360:
    raise ValueError(f"rotate: angle must be in [0, 360), got {angle}")
  if angle < 1e-7:
    return img
  h, w = img.shape[:2]
  mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
  cos, sin = abs(mat[0, 0]), abs(mat[0, 1])
  new_w, new_h = int(h * sin + w * cos), int(h * cos + w * sin)
  mat[0, 2] += (new_w - w) / 2
  mat[1, 2] += (new_h - h) / 2
  return cv2.warpAffine(img, mat, (new_w, new_h), flags=cv2.INTER_CUBIC)
