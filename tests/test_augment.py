"""PaddleOCR's augmentations as pure functions: determinism, shapes, probabilities, edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from textrec.data import augment

OFF = dict(tia_prob=0, crop_prob=0, reverse_prob=0, noise_prob=0, jitter_prob=0, blur_prob=0,
           hsv_aug_prob=0)


def _img(h=48, w=200, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
  return np.ascontiguousarray(np.repeat(np.repeat(base[::4, ::4], 4, 0), 4, 1)[:h, :w])


def test_rec_aug_is_deterministic_given_rng():
  img = _img()
  a = [augment.rec_aug(img, np.random.default_rng(s)) for s in range(6)]
  b = [augment.rec_aug(img, np.random.default_rng(s)) for s in range(6)]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert any(x.shape != a[0].shape or not np.array_equal(x, a[0]) for x in a[1:])
  for x in a:
    assert x.dtype == np.uint8 and x.ndim == 3 and x.shape[2] == 3
    assert x.shape[1] == img.shape[1] and img.shape[0] - 8 <= x.shape[0] <= img.shape[0]


def test_all_off_is_identity_and_input_untouched():
  img = _img()
  keep = img.copy()
  out = augment.rec_aug(img, np.random.default_rng(0), **OFF)
  np.testing.assert_array_equal(out, img)
  for s in range(10):
    augment.rec_aug(img, np.random.default_rng(s))
  np.testing.assert_array_equal(img, keep)


def test_invert_probability_is_paddles():
  img = _img()
  opts = dict(OFF, reverse_prob=0.4)
  rng = np.random.default_rng(1)
  n = 2000
  inv = sum(np.array_equal(augment.rec_aug(img, rng, **opts), 255 - img) for _ in range(n))
  assert abs(inv / n - 0.4) < 0.04  # binomial sd ~0.011


def test_crop_removes_1_to_8_rows_top_or_bottom():
  img = _img(48, 100)
  seen = set()
  for s in range(200):
    out = augment.get_crop(img, np.random.default_rng(s))
    k = img.shape[0] - out.shape[0]
    assert 1 <= k <= 8
    if np.array_equal(out, img[k:]):
      seen.add(("top", k))
    else:
      np.testing.assert_array_equal(out, img[:img.shape[0] - k])
      seen.add(("bottom", k))
  assert len(seen) == 16  # every amount, both sides


def test_warp_identity_and_stretch_keeps_edges():
  img = _img(48, 240)
  h, w = img.shape[:2]
  src = [[0, 0], [w, 0], [w, h], [0, h], [w // 2, 0], [w // 2, h]]
  out = augment.warp_mls(img, src, src)
  assert np.abs(out.astype(int) - img).max() <= 1  # uint8 truncation of ~x.9999
  st = augment.tia_stretch(img, 4, np.random.default_rng(0))
  assert st.shape == img.shape
  assert np.abs(st[:, 0].astype(int) - img[:, 0]).mean() < 1  # left edge (nearly) pinned
  assert not np.array_equal(st, img)


def test_tia_on_tiny_and_odd_images_never_fails():
  rng = np.random.default_rng(0)
  for h, w in [(1, 1), (1, 40), (2, 3), (5, 300), (19, 19), (20, 20), (150, 350)]:
    img = _img(h, w)
    for _ in range(5):
      out = augment.rec_aug(img, rng, tia_prob=1.0)
      assert out.dtype == np.uint8 and out.shape[1] == w


def test_small_ops():
  img = _img(48, 120)
  rng = np.random.default_rng(0)
  np.testing.assert_array_equal(augment.jitter(img, rng), img)  # short side < 100: no-op
  big = _img(300, 300)
  j = augment.jitter(big, np.random.default_rng(5))
  assert j.shape == big.shape
  hsv = augment.hsv_aug(img, rng)
  assert np.abs(hsv.astype(int) - img).max() <= 8  # value scaled by 1 +- 0.001, then truncated
  noisy = augment.gaussian_noise(img, rng)
  assert np.abs(noisy.astype(int) - img).max() <= 2
  assert augment.blur(_img(8, 100)) is not None
  np.testing.assert_array_equal(augment.blur(_img(8, 100)), _img(8, 100))


def _ext(img, text):
  return lambda rng: (img, text)


def test_rec_con_aug_concatenates_within_limits():
  a, b = _img(30, 60, 1), _img(20, 40, 2)
  rng = np.random.default_rng(0)
  out, text = augment.rec_con_aug(a, "ab", rng, _ext(b, "cd"), prob=1.0)
  assert text == "abcdcd" and out.shape[0] == 48
  assert out.shape[1] == round(60 / 30 * 48) + 2 * round(40 / 20 * 48)
  # text budget: stops before exceeding max_text_length
  out, text = augment.rec_con_aug(a, "a" * 20, rng, _ext(b, "b" * 6), prob=1.0)
  assert text == "a" * 20 and out is a
  # ratio budget: w/h of 320/48 at most
  wide = _img(10, 60)
  out, text = augment.rec_con_aug(wide, "ab", rng, _ext(wide, "c"), prob=1.0)
  assert text == "abc" or text == "ab"
  assert out.shape[1] / out.shape[0] <= 320 / 48 + 0.5 or text == "ab"
  # prob 0: untouched, loader never called
  def boom(rng):
    raise AssertionError("must not load")
  out, text = augment.rec_con_aug(a, "ab", rng, boom, prob=0.0)
  assert text == "ab" and out is a


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_rec_con_aug_probability(p):
  a = _img(30, 60)
  rng = np.random.default_rng(3)
  n = 1000
  k = sum(augment.rec_con_aug(a, "x", rng, _ext(a, "y"), prob=p)[1] != "x" for _ in range(n))
  assert abs(k / n - p) < 0.05
