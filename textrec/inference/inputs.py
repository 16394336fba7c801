"""Streaming iteration over predict inputs.

An input is a path (image file or directory; `~` expanded), a BGR np.ndarray (one image
[H, W(, C)] or a stack [N, H, W, C]), or a list of these. `iter_inputs` yields one `Item` per
image, reading each file only when the item is pulled, so a directory is never held in
memory. A bad input yields an `Item` whose `error` names it and says what is wrong, instead
of raising.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import os
import pathlib
import re
import sys
from typing import Any, Iterable, Iterator
import warnings

import cv2
import numpy as np

from textrec.inference import preprocess

SKIPPED = "; skipped"  # ends the error of a directory's non-image file
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm",
              ".pgm", ".ppm", ".pnm")


@dataclasses.dataclass
class Item:
  """One input image, or the reason it could not be read.

  input_path: the file, or None for an array input; index: position in the input stream;
  image: BGR uint8 [H, W, 3] (None when `error` is set).
  """
  index: int
  input_path: str | None
  image: np.ndarray | None = None
  error: str | None = None


def _is_image_name(path: str) -> bool:
  return path.lower().endswith(IMAGE_EXTS)


def check_image(img: Any, name: str) -> tuple[np.ndarray | None, str | None]:
  """Array -> (BGR uint8 [H, W, 3], None) or (None, error naming `name`)."""
  try:
    arr = np.asarray(img)
  except Exception as e:  # noqa: BLE001  (anything np.asarray rejects)
    return None, f"{name}: not an image array ({e})"
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    return None, f"{name}: not an image array (dtype {arr.dtype})"
  if arr.ndim not in (2, 3):
    return None, f"{name}: expected an image [H, W] or [H, W, 1|3|4]; got shape {arr.shape}"
  if arr.size == 0 or arr.shape[0] == 0 or arr.shape[1] == 0:
    return None, f"{name}: empty image (shape {arr.shape})"
  try:
    bgr = preprocess.ensure_bgr(arr.astype(np.uint8) if arr.dtype == bool else arr)
  except ValueError as e:
    return None, f"{name}: {e}"
  return np.ascontiguousarray(bgr), None


def header_pixels(buf: bytes) -> tuple[int, str] | None:
  """(pixel count, "WxH") from an encoded image's header, read without decoding the pixels
  (so a decompression bomb costs nothing); None when Pillow does not recognise the bytes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  with warnings.catch_warnings():
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
      with Image.open(io.BytesIO(buf)) as im:
        w, h = im.size
        return w * h, f"{w}x{h}"
    except Image.DecompressionBombError as e:  # > 2x Pillow's own limit: only the count
      m = re.search(r"\((\d+) pixels", str(e))
      n = int(m.group(1)) if m else 1 << 62
      return n, f"{n}-pixel"
    except Exception:  # noqa: BLE001  (Pillow raises many kinds for unknown bytes)
      return None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
  """OpenCV's own log (its `[ WARN:...]` lines on stderr) at ERROR within the block."""
  logging = getattr(getattr(cv2, "utils", None), "logging", None)
  if logging is None:
    yield
    return
  before = logging.getLogLevel()
  logging.setLogLevel(min(before, logging.LOG_LEVEL_ERROR))
  try:
    yield
  finally:
    logging.setLogLevel(before)


def decode_image(buf: bytes | np.ndarray, name: str) -> tuple[np.ndarray | None, str | None]:
  """Decodes encoded image bytes as OpenCV's imread(IMREAD_COLOR) does -> (BGR uint8, None)
  or (None, error naming `name`)."""
  buf = np.frombuffer(buf, np.uint8) if isinstance(buf, (bytes, bytearray)) else buf
  if buf.size == 0:
    return None, f"{name}: empty file"
  try:
    with _quiet_opencv():  # a truncated file is our per-item error, not an OpenCV WARN line
      img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
  except cv2.error:
    img = None
  if img is None:
    return None, f"{name}: not a readable image (corrupt, truncated or unsupported format)"
  return check_image(img, name)


def read_image(path: str) -> tuple[np.ndarray | None, str | None]:
  """Decodes an image file as OpenCV's imread(IMREAD_COLOR) does -> (BGR uint8, None) or
  (None, error naming the file)."""
  if not os.path.exists(path):
    return None, f"{path}: no such file"
  if os.path.isdir(path):
    return None, f"{path}: is a directory"
  try:
    buf = np.fromfile(path, dtype=np.uint8)
  except OSError as e:
    return None, f"{path}: cannot read ({e.strerror or e})"
  return decode_image(buf, path)


def _walk_dir(root: str) -> Iterator[str]:
  """Files under `root`, recursively, in sorted order; hidden entries skipped."""
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    for f in sorted(filenames):
      if not f.startswith("."):
        yield os.path.join(dirpath, f)


def _expand(inp: Any, name: str) -> Iterator[tuple[str | None, Any]]:
  """Flattens one input into (path_or_None, path_or_array_or_error) pairs, lazily."""
  if isinstance(inp, (str, os.PathLike)):
    path = os.path.expanduser(os.fspath(inp))
    if os.path.isdir(path):
      for f in _walk_dir(path):
        if _is_image_name(f):
          yield f, f
        else:
          ext = pathlib.Path(f).suffix or "(none)"
          yield f, _Error(f"{f}: not an image file (extension {ext}){SKIPPED}")
    else:
      yield path, path
  elif isinstance(inp, np.ndarray) and inp.ndim == 4:
    for i in range(inp.shape[0]):
      yield None, inp[i]
  elif isinstance(inp, np.ndarray):
    yield None, inp
  elif isinstance(inp, (list, tuple)):
    for j, x in enumerate(inp):
      if isinstance(x, (list, tuple)):
        yield None, _Error(f"{name}[{j}]: nested lists are not an input")
      else:
        yield from _expand(x, f"{name}[{j}]")
  else:
    yield None, _Error(f"{name}: unsupported input type {type(inp).__name__}; expected a "
                       "path, a directory, a BGR np.ndarray or a list of these")


@dataclasses.dataclass(frozen=True)
class _Error:
  message: str


def iter_inputs(inputs: Any) -> Iterator[Item]:
  """Yields one Item per image of `inputs`, in order, reading files as they are pulled."""
  for index, (path, x) in enumerate(_expand(inputs, "input")):
    if isinstance(x, _Error):
      yield Item(index, path, error=x.message)
    elif isinstance(x, str):
      img, err = read_image(x)
      yield Item(index, x, image=img, error=err)
    else:
      img, err = check_image(x, f"input array #{index}")
      yield Item(index, None, image=img, error=err)


def error_reason(error: str, path: str | None) -> tuple[str, bool]:
  """An Item's error -> (its short reason, e.g. "no such file", skipped?); a directory's
  non-image files are skipped, not failed."""
  why = error[len(path) + 2:] if path and error.startswith(f"{path}: ") else \
      error.split(": ", 1)[-1]
  return why.split(" (")[0].removesuffix(SKIPPED), error.endswith(SKIPPED)


def tally_error(error: str, path: str | None, failed: collections.Counter,
                skipped: collections.Counter, who: str) -> None:
  """Counts an item's error by reason as failed or skipped (a directory's non-image files),
  printing failures as `<who>: error: ...` on stderr."""
  why, skip = error_reason(error, path)
  (skipped if skip else failed)[why] += 1
  if not skip:
    print(f"{who}: error: {error}", file=sys.stderr)


def by_reason(counts: collections.Counter) -> str:
  """"2 no such file, 1 corrupt image" (most common first)."""
  return ", ".join(f"{n} {why}" for why, n in counts.most_common())


def chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
  """Groups a stream into lists of at most `size`, without reading ahead further."""
  if size < 1:
    raise ValueError(f"batch_size must be >= 1, got {size}")
  buf: list[Item] = []
  for it in items:
    buf.append(it)
    if len(buf) == size:
      yield buf
      buf = []
  if buf:
    yield buf
