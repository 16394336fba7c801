"""Text-line crops from detected quads, as PaddleOCR's `get_rotate_crop_image`."""
from __future__ import annotations

import cv2
import numpy as np

TALL = 1.5  # a crop at least this many times taller than wide is turned to read along it


def crop_quad(img: np.ndarray, quad: np.ndarray) -> np.ndarray:
  """BGR [H, W, 3], quad f32[4, 2] (clockwise from the top-left) -> the quad warped to an
  upright rectangle (cubic, replicated border): width the longer of its top and bottom
  edges, height the longer of its sides, truncated to whole pixels. A result at least
  `TALL` times taller than wide is turned 90 degrees counter-clockwise."""
  quad = np.asarray(quad, np.float32)
  w = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
  h = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
  target = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
  m = cv2.getPerspectiveTransform(quad, target)
  out = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE,
                            flags=cv2.INTER_CUBIC)
  if out.shape[0] >= TALL * out.shape[1]:
    out = np.ascontiguousarray(np.rot90(out))
  return out
