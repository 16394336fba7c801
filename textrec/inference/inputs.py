"""Streaming iteration over predict inputs.

An input is a path (image file, PDF or directory; `~` expanded), a BGR np.ndarray (one image
[H, W(, C)] or a stack [N, H, W, C]), the bytes of an encoded image or of a PDF, or a list of
these. `iter_inputs` yields one `Item` per image or PDF page, reading each file only when the
item is pulled, so a directory is never held in memory. A file is a PDF by its content
(`%PDF-`), whatever its name; a directory's files are taken by their extension (images and
`.pdf`, as PaddleX's ImageBatchSampler). A PDF gives one item per page, `page_index` 0, 1, ...
(textrec/inference/pdf.py renders them as PaddleX does); an image's `page_index` is None. A bad
input (an encrypted or broken PDF, too many pages) yields an `Item` whose `error` names it
(and the page) and says what is wrong, instead of raising.
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

from textrec.errors import InputError
from textrec.inference import pdf as pdf_lib
from textrec.inference import preprocess

SKIPPED = "; skipped"  # ends the error of a directory's non-image file
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm",
              ".pgm", ".ppm", ".pnm")
PDF_EXTS = (".pdf",)


@dataclasses.dataclass
class Item:
  """One input image, or the reason it could not be read.

  input_path: the file, or None for an array / bytes input; index: position in the stream
  of items (a PDF's pages count one each); image: BGR uint8 [H, W, 3] (None when `error` is
  set); page_index: the page of a PDF (0-based, PaddleX's), None for an image.
  """
  index: int
  input_path: str | None
  image: np.ndarray | None = None
  error: str | None = None
  page_index: int | None = None


def _is_input_name(path: str) -> bool:
  return path.lower().endswith(IMAGE_EXTS + PDF_EXTS)


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


def read_file(path: str) -> tuple[bytes | None, str | None]:
  """A file's bytes, or (None, error naming the file)."""
  if not os.path.exists(path):
    return None, f"{path}: no such file"
  if os.path.isdir(path):
    return None, f"{path}: is a directory"
  try:
    with open(path, "rb") as f:
      return f.read(), None
  except OSError as e:
    return None, f"{path}: cannot read ({e.strerror or e})"


def read_image(path: str) -> tuple[np.ndarray | None, str | None]:
  """Decodes an image file as OpenCV's imread(IMREAD_COLOR) does -> (BGR uint8, None) or
  (None, error naming the file)."""
  buf, err = read_file(path)
  return (None, err) if err else decode_image(buf, path)


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
        if _is_input_name(f):
          yield f, f
        else:
          ext = pathlib.Path(f).suffix or "(none)"
          yield f, _Error(f"{f}: not an image file (extension {ext}){SKIPPED}")
    else:
      yield path, path
  elif isinstance(inp, (bytes, bytearray, memoryview)):
    yield None, _Bytes(bytes(inp), name)
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
                       "path, a directory, a BGR np.ndarray, image or PDF bytes or a list of "
                       "these")


@dataclasses.dataclass(frozen=True)
class _Error:
  message: str


@dataclasses.dataclass(frozen=True)
class _Bytes:
  data: bytes
  name: str


def _pdf_pages(data: bytes, name: str, max_pages: int | None, max_page_pixels: int | None
               ) -> Iterator[tuple[np.ndarray | None, str | None, int | None]]:
  """(page, None, page_index) per page of a PDF, or (None, error, page_index) for a page
  that fails (the next pages still come), or one (None, error, None) when the whole PDF
  fails (unreadable, encrypted, over a limit)."""
  try:
    doc = pdf_lib.open_pdf(data, name)
  except InputError as e:
    yield None, str(e), None
    return
  try:
    try:
      n = pdf_lib.check_pages(doc, name, max_pages=max_pages, max_page_pixels=max_page_pixels)
    except InputError as e:
      yield None, str(e), None
      return
    for i in range(n):
      try:
        yield pdf_lib.render_page(doc, i, name), None, i
      except InputError as e:
        yield None, str(e), i
  finally:
    doc.close()


def _read(x: Any, index: int, pdf_limits: tuple[int | None, int | None]
          ) -> Iterator[tuple[np.ndarray | None, str | None, int | None]]:
  """One expanded input -> (image, error, page_index) per image: one for an image or an
  array, one per page for a PDF (a file or bytes by its content; pdf_limits: max pages,
  max page pixels)."""
  if isinstance(x, _Error):
    yield None, x.message, None
    return
  if isinstance(x, str):
    data, err = read_file(x)
    if err:
      yield None, err, None
      return
    name = x
  elif isinstance(x, _Bytes):
    data, name = x.data, f"{x.name} (bytes)"
  else:
    yield (*check_image(x, f"input array #{index}"), None)
    return
  if pdf_lib.is_pdf(data):
    yield from _pdf_pages(data, name, *pdf_limits)
  else:
    yield (*decode_image(data, name), None)


def iter_inputs(inputs: Any, *, max_pdf_pages: int | None = None,
                max_pdf_page_pixels: int | None = pdf_lib.MAX_PAGE_PIXELS) -> Iterator[Item]:
  """Yields one Item per image or PDF page of `inputs`, in order, reading files as they are
  pulled. max_pdf_pages: a PDF with more pages is one failed item (None: any number, as
  PaddleX's pipelines); max_pdf_page_pixels: a PDF with a page over it at the render zoom is
  one failed item (default: OpenCV's own cap on a decoded image; None: no limit)."""
  index = 0
  for path, x in _expand(inputs, "input"):
    for img, err, page in _read(x, index, (max_pdf_pages, max_pdf_page_pixels)):
      yield Item(index, path, image=img, error=err, page_index=page)
      index += 1


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
