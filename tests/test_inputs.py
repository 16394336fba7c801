"""Predict input iteration: kinds of input, lazy reading, per-item errors naming the input."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from textrec.inference import inputs


def _write(path, img):
  assert cv2.imwrite(str(path), img)
  return str(path)


@pytest.fixture()
def mixed_dir(tmp_path):
  rng = np.random.default_rng(0)
  d = tmp_path / "crops"
  (d / "sub").mkdir(parents=True)
  _write(d / "a_color.png", rng.integers(0, 256, (20, 60, 3), dtype=np.uint8))
  _write(d / "b_gray.png", rng.integers(0, 256, (20, 40), dtype=np.uint8))
  _write(d / "c_rgba.png", rng.integers(0, 256, (16, 30, 4), dtype=np.uint8))
  (d / "d_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
  (d / "e_empty.jpg").write_bytes(b"")
  (d / "f_notes.txt").write_text("not an image")
  _write(d / "g_strip.png", rng.integers(0, 256, (1, 5000, 3), dtype=np.uint8))
  _write(d / "sub" / "h_nested.jpg", rng.integers(0, 256, (30, 90, 3), dtype=np.uint8))
  (d / ".hidden.png").write_bytes(b"ignored")
  return d


def test_directory_sorted_recursive_with_per_item_errors(mixed_dir):
  items = list(inputs.iter_inputs(str(mixed_dir)))
  names = [os.path.relpath(it.input_path, mixed_dir) for it in items]
  assert names == ["a_color.png", "b_gray.png", "c_rgba.png", "d_corrupt.png", "e_empty.jpg",
                   "f_notes.txt", "g_strip.png", os.path.join("sub", "h_nested.jpg")]
  assert [it.index for it in items] == list(range(8))
  by = dict(zip(names, items))
  for ok in ("a_color.png", "b_gray.png", "c_rgba.png", "g_strip.png", "sub/h_nested.jpg"):
    it = by[ok.replace("/", os.sep)]
    assert it.error is None, it.error
    assert it.image.dtype == np.uint8 and it.image.ndim == 3 and it.image.shape[2] == 3
  assert by["g_strip.png"].image.shape == (1, 5000, 3)
  gray = by["b_gray.png"].image
  assert np.array_equal(gray[..., 0], gray[..., 2])  # gray replicated to BGR
  for bad, why in (("d_corrupt.png", "not a readable image"), ("e_empty.jpg", "empty file"),
                   ("f_notes.txt", "not an image file")):
    it = by[bad]
    assert it.image is None
    assert it.error.startswith(str(mixed_dir / bad)) and why in it.error, it.error


def test_reads_lazily(mixed_dir):
  gen = inputs.iter_inputs(str(mixed_dir))
  first = next(gen)
  assert first.error is None
  os.remove(mixed_dir / "b_gray.png")  # listed already, read only when pulled
  second = next(gen)
  assert second.image is None and "no such file" in second.error


def test_missing_path_and_directory_in_list(tmp_path, mixed_dir):
  missing = str(tmp_path / "nope.png")
  items = list(inputs.iter_inputs([missing, str(mixed_dir / "a_color.png")]))
  assert items[0].error == f"{missing}: no such file"
  assert items[1].error is None and items[1].input_path.endswith("a_color.png")


def test_arrays():
  rng = np.random.default_rng(1)
  bgr = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
  stack = rng.integers(0, 256, (3, 8, 16, 3), dtype=np.uint8)
  gray = rng.integers(0, 256, (10, 20), dtype=np.uint8)
  bgra = rng.integers(0, 256, (10, 20, 4), dtype=np.uint8)
  floats = rng.uniform(0, 1, (10, 20, 3)).astype(np.float32)
  items = list(inputs.iter_inputs([bgr, stack, gray, bgra, floats]))
  assert len(items) == 7 and all(it.error is None for it in items)
  assert all(it.input_path is None for it in items)
  assert np.array_equal(items[0].image, bgr)
  assert np.array_equal(items[2].image, stack[1])
  assert np.array_equal(items[5].image, bgra[..., :3])
  assert items[6].image.dtype == np.uint8 and items[6].image.max() > 1


@pytest.mark.parametrize("bad,why", [
    (np.zeros((0, 10, 3), np.uint8), "empty image"),
    (np.zeros((5, 0), np.uint8), "empty image"),
    (np.zeros((4, 5, 2), np.uint8), "expected an image"),
    (np.zeros((1, 2, 3, 4, 5), np.uint8), "expected an image"),
    (np.array([["a", "b"]]), "not an image array"),
])
def test_bad_arrays_are_item_errors(bad, why):
  [it] = list(inputs.iter_inputs(bad)) if bad.ndim != 4 else list(inputs.iter_inputs([bad]))
  assert it.image is None and why in it.error and "input array #0" in it.error


def test_unsupported_type_is_an_item_error():
  items = list(inputs.iter_inputs([42, np.zeros((4, 4, 3), np.uint8)]))
  assert "unsupported input type int" in items[0].error
  assert items[1].error is None


def test_chunks():
  assert [len(c) for c in inputs.chunks(iter(range(7)), 3)] == [3, 3, 1]
  with pytest.raises(ValueError, match="batch_size"):
    list(inputs.chunks(iter(range(3)), 0))
