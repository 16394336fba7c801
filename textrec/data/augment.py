"""PaddleOCR's text-line augmentations (ppocr/data/imaug/rec_img_aug.py, text_image_aug/) as
pure numpy/OpenCV functions.

Images are BGR uint8 [H, W, 3]. Every random choice comes from the `rng` argument (an explicit
np.random.Generator), so a sample's augmentation depends only on its seed. Probabilities,
ranges and order are PaddleOCR's (RecAug defaults: every step 0.4; RecConAug: 0.5).
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

REC_AUG_PROB = 0.4  # PaddleOCR's RecAug: each operation fires with this probability
CON_AUG_PROB = 0.5  # PaddleOCR's RecConAug
GRID = 100  # WarpMLS evaluates the deformation on a 100-pixel grid and interpolates between


# ----------------------------------------------------------------------------- TIA (WarpMLS)
def _grid_coords(n: int) -> np.ndarray:
  """0, 100, 200, ... < n, then n - 1 (as WarpMLS walks its grid)."""
  pts = list(range(0, n, GRID))
  if pts[-1] != n - 1:
    pts.append(n - 1)
  return np.asarray(pts, np.float64)


def _mls_grid(src_pts: np.ndarray, dst_pts: np.ndarray, xs: np.ndarray, ys: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
  """Similarity moving-least-squares source offsets at the grid points. Returns rdx, rdy [gy, gx].

  For each grid point v (in the destination image) it finds where v comes from in the source,
  weighting control point k by 1 / |v - p_k|^2 (p = dst_pts, q = src_pts). A grid point on a
  control point maps to that point's source (WarpMLS keeps its quirk: only when that control
  point is not the last one; otherwise the others decide).
  """
  p, q = dst_pts.astype(np.float64), src_pts.astype(np.float64)       # [K, 2]
  K = len(p)
  vx, vy = np.meshgrid(xs, ys)                                        # [gy, gx]
  v = np.stack([vx, vy], -1)[..., None, :]                            # [gy, gx, 1, 2]
  d2 = ((v - p) ** 2).sum(-1)                                         # [gy, gx, K]
  hit = d2 == 0
  w = np.where(hit, 0.0, 1.0 / np.where(hit, 1.0, d2))
  sw = w.sum(-1, keepdims=True)
  pstar = (w[..., None] * p).sum(-2) / sw                             # [gy, gx, 2]
  qstar = (w[..., None] * q).sum(-2) / sw
  ph = p - pstar[..., None, :]                                        # [gy, gx, K, 2]
  miu = (w * (ph ** 2).sum(-1)).sum(-1)                               # [gy, gx]
  cur = v[..., 0, :] - pstar                                          # [gy, gx, 2]
  cur_j = np.stack([-cur[..., 1], cur[..., 0]], -1)
  ph_j = np.stack([-ph[..., 1], ph[..., 0]], -1)
  dot = lambda a, b: (a * b).sum(-1)
  c = cur[..., None, :]
  cj = cur_j[..., None, :]
  t0 = dot(ph, c) * q[:, 0] - dot(ph_j, c) * q[:, 1]                  # [gy, gx, K]
  t1 = -dot(ph, cj) * q[:, 0] + dot(ph_j, cj) * q[:, 1]
  new = np.stack([(w * t0).sum(-1), (w * t1).sum(-1)], -1) / miu[..., None] + qstar
  # Grid points sitting on a control point (first match, if it is not the last one).
  first = np.argmax(hit, -1)
  snap = hit.any(-1) & (first != K - 1)
  new = np.where(snap[..., None], q[first], new)
  return new[..., 0] - vx, new[..., 1] - vy


def _bilerp(x, y, v11, v12, v21, v22):
  return (v11 * (1 - y) + v12 * y) * (1 - x) + (v21 * (1 - y) + v22 * y) * x


def warp_mls(src: np.ndarray, src_pts: Sequence, dst_pts: Sequence) -> np.ndarray:
  """Warps `src` [H, W, C] so that src_pts land on dst_pts (PaddleOCR's WarpMLS, same size)."""
  h, w = src.shape[:2]
  xs, ys = _grid_coords(w), _grid_coords(h)
  rdx_g, rdy_g = _mls_grid(np.asarray(src_pts, np.float64), np.asarray(dst_pts, np.float64),
                           xs, ys)
  # Dense offsets: bilinear inside each grid tile, as WarpMLS.gen_img (its tile fraction is
  # d / tile_size, so the far edge of a tile is never reached exactly).
  xi = {int(x): k for k, x in enumerate(xs)}
  yi = {int(y): k for k, y in enumerate(ys)}
  dx = np.zeros((h, w))
  dy = np.zeros((h, w))
  for i in range(0, h, GRID):
    ni, th = (i + GRID, GRID) if i + GRID < h else (h - 1, h - i)
    for j in range(0, w, GRID):
      nj, tw = (j + GRID, GRID) if j + GRID < w else (w - 1, w - j)
      fy = (np.arange(th) / th)[:, None]
      fx = (np.arange(tw) / tw)[None, :]
      a, b, c, d = (yi[i], xi[j]), (yi[i], xi[nj]), (yi[ni], xi[j]), (yi[ni], xi[nj])
      dx[i:i + th, j:j + tw] = _bilerp(fy, fx, rdx_g[a], rdx_g[b], rdx_g[c], rdx_g[d])
      dy[i:i + th, j:j + tw] = _bilerp(fy, fx, rdy_g[a], rdy_g[b], rdy_g[c], rdy_g[d])
  nx = np.clip(np.arange(w)[None, :] + dx, 0, w - 1).astype(np.float32)
  ny = np.clip(np.arange(h)[:, None] + dy, 0, h - 1).astype(np.float32)
  # Bilinear sampling of the float image (cv2.remap: sub-pixel positions to 1/32 pixel).
  out = cv2.remap(src.astype(np.float32), nx, ny, cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE)
  if out.ndim < src.ndim:
    out = out[..., None]
  return np.clip(out, 0, 255).astype(np.uint8)  # truncation, as WarpMLS


def tia_distort(img: np.ndarray, segment: int, rng: np.random.Generator) -> np.ndarray:
  """Random jitter of the corners and of 2*(segment-1) points on the top/bottom edges."""
  h, w = img.shape[:2]
  cut = w // segment
  t = cut // 3
  if t < 1:
    return img
  r = lambda: int(rng.integers(t))
  src = [[0, 0], [w, 0], [w, h], [0, h]]
  dst = [[r(), r()], [w - r(), r()], [w - r(), h - r()], [r(), h - r()]]
  half = t * 0.5
  for k in range(1, segment):
    src += [[cut * k, 0], [cut * k, h]]
    dst += [[cut * k + r() - half, r() - half], [cut * k + r() - half, h + r() - half]]
  return warp_mls(img, src, dst)


def tia_stretch(img: np.ndarray, segment: int, rng: np.random.Generator) -> np.ndarray:
  """Random horizontal shift of the segment boundaries (corners fixed)."""
  h, w = img.shape[:2]
  cut = w // segment
  t = cut * 4 // 5
  if t < 1:
    return img
  src = [[0, 0], [w, 0], [w, h], [0, h]]
  dst = [[0, 0], [w, 0], [w, h], [0, h]]
  half = t * 0.5
  for k in range(1, segment):
    move = int(rng.integers(t)) - half
    src += [[cut * k, 0], [cut * k, h]]
    dst += [[cut * k + move, 0], [cut * k + move, h]]
  return warp_mls(img, src, dst)


def tia_perspective(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Random vertical move of the four corners by up to H/2 (a perspective-like squeeze)."""
  h, w = img.shape[:2]
  t = h // 2
  if t < 1:  # PaddleOCR would raise here (randint(0)); a 1-pixel-high crop stays as is
    return img
  r = lambda: int(rng.integers(t))
  src = [[0, 0], [w, 0], [w, h], [0, h]]
  dst = [[0, r()], [w, r()], [w, h - r()], [0, h - r()]]
  return warp_mls(img, src, dst)


# ----------------------------------------------------------------------------- BaseDataAugmentation
def get_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Cuts 1..8 rows off the top or the bottom."""
  h = img.shape[0]
  top = min(int(rng.integers(1, 9)), h - 1)
  if int(rng.integers(0, 2)):
    return img[top:h].copy()
  return img[0:h - top].copy()


def blur(img: np.ndarray) -> np.ndarray:
  """5x5 Gaussian, sigma 1, when both sides exceed 10 pixels."""
  h, w = img.shape[:2]
  if h > 10 and w > 10:
    return cv2.GaussianBlur(img, (5, 5), 1)
  return img


def _flag(rng: np.random.Generator) -> int:
  return 1 if rng.random() > 0.5000001 else -1


def hsv_aug(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Scales HSV value by 1 +- 0.001 * u (truncated back to uint8, as PaddleOCR)."""
  hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
  delta = 0.001 * rng.random() * _flag(rng)
  hsv[:, :, 2] = hsv[:, :, 2] * (1 + delta)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Smears the image diagonally by up to 1% of its short side (a no-op below 100 pixels)."""
  h, w = img.shape[:2]
  if h > 10 and w > 10:
    s = int(rng.random() * min(h, w) * 0.01)
    src = img.copy()
    img = img.copy()
    for i in range(s):
      img[i:, i:, :] = src[:h - i, :w - i, :]
  return img


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, mean: float = 0.0,
                   var: float = 0.1) -> np.ndarray:
  """img + 0.5 * N(mean, var), clipped and truncated to uint8."""
  noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(var ** 0.5) + mean
  return np.clip(img + np.float32(0.5) * noise, 0, 255).astype(np.uint8)


def invert(img: np.ndarray) -> np.ndarray:
  return 255 - img


def rec_aug_all(img: np.ndarray, rng: np.random.Generator, prob: float = REC_AUG_PROB
                ) -> np.ndarray:
  """`rec_aug` with every operation at the same probability `prob`."""
  return rec_aug(img, rng, tia_prob=prob, crop_prob=prob, reverse_prob=prob, noise_prob=prob,
                 jitter_prob=prob, blur_prob=prob, hsv_aug_prob=prob)


def rec_aug(img: np.ndarray, rng: np.random.Generator, tia_prob: float = REC_AUG_PROB,
            crop_prob: float = REC_AUG_PROB, reverse_prob: float = REC_AUG_PROB,
            noise_prob: float = REC_AUG_PROB, jitter_prob: float = REC_AUG_PROB,
            blur_prob: float = REC_AUG_PROB, hsv_aug_prob: float = REC_AUG_PROB
            ) -> np.ndarray:
  """PaddleOCR's RecAug: TIA (distort + stretch when both sides >= 20, then perspective) with
  tia_prob, then crop, blur, HSV, jitter, noise, invert, each with its own probability."""
  h, w = img.shape[:2]
  if rng.random() <= tia_prob:
    if h >= 20 and w >= 20:
      img = tia_distort(img, int(rng.integers(3, 7)), rng)
      img = tia_stretch(img, int(rng.integers(3, 7)), rng)
    img = tia_perspective(img, rng)
  h, w = img.shape[:2]
  if rng.random() <= crop_prob and h >= 20 and w >= 20:
    img = get_crop(img, rng)
  if rng.random() <= blur_prob:
    img = blur(img)
  if rng.random() <= hsv_aug_prob:
    img = hsv_aug(img, rng)
  if rng.random() <= jitter_prob:
    img = jitter(img, rng)
  if rng.random() <= noise_prob:
    img = gaussian_noise(img, rng)
  if rng.random() <= reverse_prob:
    img = invert(img)
  return img


# ----------------------------------------------------------------------------- RecConAug
def _to_height(img: np.ndarray, height: int) -> np.ndarray:
  w = round(img.shape[1] / img.shape[0] * height)
  return cv2.resize(img, (max(1, w), height))


def rec_con_aug(img: np.ndarray, text: str, rng: np.random.Generator,
                load_ext: Callable[[np.random.Generator], tuple[np.ndarray, str]],
                prob: float = CON_AUG_PROB, ext_data_num: int = 2,
                image_shape: Sequence[int] = (48, 320),
                max_text_length: int = 25) -> tuple[np.ndarray, str]:
  """PaddleOCR's RecConAug: with `prob`, appends up to `ext_data_num` other samples on the right
  (each resized to image_shape[0] rows), stopping at the first that would make the text longer
  than max_text_length or the width/height ratio larger than image_shape[1] / image_shape[0].

  `load_ext(rng)` returns a random other sample (image, text); it is called only when needed.
  """
  if rng.random() > prob:
    return img, text
  max_ratio = image_shape[1] / image_shape[0]
  for _ in range(ext_data_num):
    ext_img, ext_text = load_ext(rng)
    if len(text) + len(ext_text) > max_text_length:
      break
    if img.shape[1] / img.shape[0] + ext_img.shape[1] / ext_img.shape[0] > max_ratio:
      break
    img = np.concatenate([_to_height(img, image_shape[0]), _to_height(ext_img, image_shape[0])],
                         axis=1)
    text = text + ext_text
  return img, text
