"""The one resize/normalise/pad code path shared by predict, evaluate, training and export checks.

Images are BGR uint8 `[H, W, 3]` (OpenCV's order, as PaddleX takes them). Output images are
float32 `[height, W, 3]` (NHWC, BGR), normalised to [-1, 1] as (x/255 - 0.5)/0.5, zero-padded
on the right.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import cv2
import numpy as np

HEIGHT = 48
MIN_WIDTH = 320  # PaddleX pads every crop to at least rec_image_shape's width
MAX_WIDTH = 3200  # PaddleX caps the resized width here
# Pad widths a crop may get in predict: each crop's width depends on itself alone, and jit
# compiles at most len(BUCKETS) programs per batch size. All are multiples of 8 (T = W / 8).
BUCKETS = (320, 400, 480, 560, 640, 800, 960, 1120, 1280, 1600, 1920, 2240, 2560, 3200)


def resized_width(h: int, w: int, height: int = HEIGHT, max_width: int = MAX_WIDTH) -> int:
  """Width of a crop resized to `height`, keeping aspect ratio: ceil(height * w / h), capped."""
  if h <= 0 or w <= 0:
    raise ValueError(f"image has an empty side: {h}x{w}")
  return max(1, min(int(math.ceil(height * w / float(h))), max_width))


def bucket_width(width: int, buckets: Sequence[int] = BUCKETS) -> int:
  """Smallest bucket >= width (the last bucket if none is)."""
  for b in buckets:
    if b >= width:
      return b
  return buckets[-1]


def normalize(img: np.ndarray) -> np.ndarray:
  """uint8 -> float32 in [-1, 1]: (x / 255 - 0.5) / 0.5."""
  return (img.astype(np.float32) / 255.0 - 0.5) / 0.5


def resize_norm(img: np.ndarray, pad_width: int, height: int = HEIGHT) -> np.ndarray:
  """BGR uint8 [h, w, 3] -> float32 [height, pad_width, 3].

  Resized to `height` with width min(ceil(height * w / h), pad_width) (cv2 INTER_LINEAR, as
  PaddleOCR's resize_norm_img), normalised, zero-padded on the right to `pad_width`.
  """
  img = ensure_bgr(img)
  h, w = img.shape[:2]
  rw = resized_width(h, w, height, max_width=pad_width)
  resized = cv2.resize(img, (rw, height), interpolation=cv2.INTER_LINEAR)
  out = np.zeros((height, pad_width, 3), np.float32)
  out[:, :rw] = normalize(resized)
  return out


def predict_width(img: np.ndarray, height: int = HEIGHT,
                  buckets: Sequence[int] = BUCKETS) -> int:
  """Pad width for one crop at inference: its own resized width rounded up to a bucket."""
  h, w = img.shape[:2]
  return bucket_width(max(MIN_WIDTH, resized_width(h, w, height, buckets[-1])), buckets)


def batch_width(images: Iterable[np.ndarray], height: int = HEIGHT) -> int:
  """PaddleX's pad width for a batch of crops: int(height * r), r the largest width / height
  ratio of the crops and of MIN_WIDTH x height, at most MAX_WIDTH."""
  ratio = max([MIN_WIDTH / height] + [im.shape[1] / im.shape[0] for im in images])
  return min(int(height * ratio), MAX_WIDTH)


def ensure_bgr(img: np.ndarray) -> np.ndarray:
  """Accepts gray [H, W] / [H, W, 1], BGR [H, W, 3] or BGRA [H, W, 4] uint8; returns BGR."""
  img = np.asarray(img)
  if img.dtype != np.uint8:
    if np.issubdtype(img.dtype, np.floating) and img.size and img.max() <= 1.0:
      img = img * 255.0
    img = np.clip(img, 0, 255).astype(np.uint8)
  if img.ndim == 2:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
  if img.ndim == 3 and img.shape[2] == 1:
    return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
  if img.ndim == 3 and img.shape[2] == 4:
    return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
  if img.ndim == 3 and img.shape[2] == 3:
    return img
  raise ValueError(f"expected an image [H, W], [H, W, 1|3|4]; got shape {img.shape}")
