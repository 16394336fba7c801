"""PaddleX's image-classification pre-processing (its `ClasPredictor`), as the PP-LCNet
orientation classifiers' `inference.yml` configure it. An input is a BGR uint8 image
[h, w, 3]; PaddleX reads it as RGB, then:

  PP-LCNet_x1_0_textline_ori  ResizeImage size [160, 80] (w x h, bilinear), NormalizeImage
  PP-LCNet_x1_0_doc_ori       ResizeImage resize_short 256, CropImage 224 (centre),
                              NormalizeImage

NormalizeImage is ImageNet's: x * (1/255/std) + (-mean/std) per RGB channel, in float32.
The outputs are NHWC rows f32[H, W, 3] for the models of textrec/models/pplcnet.py.
"""
from __future__ import annotations

import cv2
import numpy as np

from textrec.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ALPHA = np.array([1.0 / 255 / s for s in IMAGENET_STD], np.float32)
_BETA = np.array([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], np.float32)

TEXTLINE_HW = (80, 160)
DOC_SHORT, DOC_CROP = 256, 224


def to_rgb(img: np.ndarray, what: str = "image") -> np.ndarray:
  """BGR uint8 [h, w, 3] -> RGB; InputError for another layout."""
  if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
    raise InputError(f"{what}: expected a BGR image [h, w, 3], got shape {img.shape}")
  return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)


def normalize(rgb: np.ndarray) -> np.ndarray:
  """RGB uint8 [h, w, 3] -> f32[h, w, 3], ImageNet mean / std (float32 as PaddleX)."""
  return rgb.astype(np.float32) * _ALPHA + _BETA


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
  """Resized (bilinear) so that its shorter side is `short`; the other side scaled alike and
  rounded half to even (Python's round, as PaddleX's ResizeByShort)."""
  h, w = img.shape[:2]
  scale = short / min(h, w)
  return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
  """The centred size x size window (left / top offset floor((dim - size) / 2))."""
  h, w = img.shape[:2]
  if h < size or w < size:
    raise InputError(f"image {w}x{h} is smaller than the {size}x{size} crop")
  x0, y0 = (w - size) // 2, (h - size) // 2
  return img[y0:y0 + size, x0:x0 + size]


def textline_input(crop: np.ndarray) -> np.ndarray:
  """BGR text-line crop -> f32[80, 160, 3] for PP-LCNet_x1_0_textline_ori."""
  h, w = TEXTLINE_HW
  rgb = cv2.resize(to_rgb(crop, "text-line crop"), (w, h), interpolation=cv2.INTER_LINEAR)
  return normalize(rgb)


def doc_input(img: np.ndarray) -> np.ndarray:
  """BGR page -> f32[224, 224, 3] for PP-LCNet_x1_0_doc_ori."""
  return normalize(center_crop(resize_short(to_rgb(img, "page image"), DOC_SHORT), DOC_CROP))
