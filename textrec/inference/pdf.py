"""PDF pages as BGR images, rendered as PaddleX renders them.

PaddleX (paddlex/inference/utils/io/readers.py, PDFReaderBackend; the serving twin
paddlex/inference/serving/infra/utils.py, read_pdf) renders every page with pypdfium2 at
zoom 2.0 (144 dpi: 2 pixels per PDF point), no extra rotation (the page's own /Rotate is
applied), on white, and turns the RGB render into BGR. `render_page` gives the same pixels
(pdfium's BGR bitmap, copied).

Limits are checked before any page is rendered: the page count, then every page's pixel
count at that zoom from its size in points (a "bomb" page, e.g. 20000 x 20000 pt, costs
nothing). Errors are InputError subclasses with a one-line message naming the file and the
page: `PdfTooLarge` (`status` 413: over a limit) and `BadPdf` (`status` 422: encrypted,
corrupt, truncated, an empty page).
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterator

import numpy as np

from textrec.errors import InputError, MissingExtraError

ZOOM = 2.0  # PaddleX's PDFReaderBackend(zoom=2.0) and serving read_pdf: 144 dpi
# OpenCV's own cap on a decoded image (CV_IO_MAX_IMAGE_PIXELS): the library's default for a
# page, so a page the image reader would refuse as an image is refused as a page too.
MAX_PAGE_PIXELS = 1 << 30
_MAGIC = b"%PDF-"


class BadPdf(InputError):
  """A PDF that cannot be rendered: encrypted, corrupt, truncated, a page of no size."""
  status = 422


class PdfTooLarge(InputError):
  """A PDF over a limit: too many pages, or a page too many pixels at the render zoom."""
  status = 413


def is_pdf(data: bytes | bytearray | memoryview) -> bool:
  """True when `data` starts as a PDF does (`%PDF-`, the header PDF readers look for)."""
  return bytes(data[:len(_MAGIC)]) == _MAGIC


def _pdfium():
  try:
    import pypdfium2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtraError("PDF input needs pypdfium2, which is not installed: "
                            "pip install 'textrec[serve]' (or pip install pypdfium2)") from e
  return pypdfium2


def open_pdf(source: bytes | str | os.PathLike, name: str) -> Any:
  """A pypdfium2 PdfDocument of PDF bytes or a PDF file (the caller closes it); BadPdf names
  `name` when PDFium cannot open it (encrypted, corrupt, truncated)."""
  pdfium = _pdfium()
  src = os.fspath(source) if isinstance(source, os.PathLike) else source
  if isinstance(src, (bytes, bytearray, memoryview)):
    src = bytes(src)
    if not src:
      raise BadPdf(f"{name}: empty file, not a PDF")
  try:
    return pdfium.PdfDocument(src)
  except pdfium.PdfiumError as e:
    code = getattr(e, "err_code", None)
    raw = pdfium.raw
    if code == raw.FPDF_ERR_PASSWORD:
      raise BadPdf(f"{name}: the PDF is encrypted (password-protected); save an unprotected "
                   "copy and give that") from None
    if code == raw.FPDF_ERR_SECURITY:
      raise BadPdf(f"{name}: the PDF is encrypted with a security handler PDFium does not "
                   "support; save an unprotected copy and give that") from None
    if code == raw.FPDF_ERR_FILE:
      raise BadPdf(f"{name}: cannot read the file") from None
    raise BadPdf(f"{name}: not a readable PDF (corrupt or truncated)") from None


def page_pixels(width_pt: float, height_pt: float, zoom: float = ZOOM) -> tuple[int, int]:
  """A page's rendered (width, height) in pixels at `zoom`, as pypdfium2 sizes its bitmap."""
  return math.ceil(width_pt * zoom), math.ceil(height_pt * zoom)


def check_pages(doc: Any, name: str, *, max_pages: int | None = None,
                max_page_pixels: int | None = MAX_PAGE_PIXELS, zoom: float = ZOOM,
                keep_first: bool = False) -> int:
  """How many pages to render, checked before rendering any: PdfTooLarge for more than
  `max_pages` pages (or, with `keep_first`, only the first `max_pages`: PaddleX serving's
  max_num_input_imgs) and for a page over `max_page_pixels` at `zoom`; BadPdf for a page
  with no size. None: no limit."""
  n = len(doc)
  if max_pages is not None and n > max_pages:
    if not keep_first:
      raise PdfTooLarge(f"{name}: {n} pages, more than the {max_pages} allowed")
    n = max_pages
  for i in range(n):
    try:
      w_pt, h_pt = doc.get_page_size(i)
    except Exception:  # noqa: BLE001  (pypdfium2's PdfiumError: a page PDFium cannot read)
      raise BadPdf(f"{name}: page {i}: not a readable page (corrupt PDF)") from None
    w, h = page_pixels(w_pt, h_pt, zoom)
    if w < 1 or h < 1:
      raise BadPdf(f"{name}: page {i}: empty page ({w_pt:g} x {h_pt:g} pt)")
    if max_page_pixels is not None and w * h > max_page_pixels:
      raise PdfTooLarge(f"{name}: page {i}: {w_pt:g} x {h_pt:g} pt renders {w}x{h} pixels at "
                        f"{72 * zoom:g} dpi, more than the {max_page_pixels} allowed")
  return n


def render_page(doc: Any, index: int, name: str, zoom: float = ZOOM) -> np.ndarray:
  """Page `index` (0-based) -> BGR uint8 [H, W, 3], PaddleX's pixels (module doc)."""
  try:
    page = doc[index]
  except Exception:  # noqa: BLE001  (PdfiumError: PDFium could not load the page)
    raise BadPdf(f"{name}: page {index}: not a readable page (corrupt PDF)") from None
  try:
    bitmap = page.render(scale=zoom, rotation=0)
  except Exception as e:  # noqa: BLE001  (PdfiumError / ValueError / MemoryError)
    page.close()
    raise BadPdf(f"{name}: page {index}: cannot render ({e})") from None
  try:
    arr = bitmap.to_numpy()
    if arr.ndim != 3 or arr.shape[2] != 3:  # BGR is pypdfium2's default: a guard
      raise BadPdf(f"{name}: page {index}: unexpected bitmap shape {arr.shape}")
    return np.array(arr, np.uint8)  # a copy: the bitmap's buffer is freed with it
  finally:
    bitmap.close()
    page.close()


def iter_pages(source: bytes | str | os.PathLike, name: str, *, max_pages: int | None = None,
               max_page_pixels: int | None = MAX_PAGE_PIXELS, zoom: float = ZOOM,
               keep_first: bool = False) -> Iterator[np.ndarray]:
  """Renders the pages one by one (BGR uint8 [H, W, 3]) after `check_pages`; the limits
  raise at the first `next`, before any page is rendered."""
  doc = open_pdf(source, name)
  try:
    n = check_pages(doc, name, max_pages=max_pages, max_page_pixels=max_page_pixels,
                    zoom=zoom, keep_first=keep_first)
    for i in range(n):
      yield render_page(doc, i, name, zoom)
  finally:
    doc.close()


def render_pdf(data: bytes, name: str, *, max_pages: int | None,
               max_page_pixels: int | None, zoom: float = ZOOM,
               keep_first: bool = False) -> list[np.ndarray]:
  """PDF bytes -> its pages, BGR uint8 [H, W, 3] each, at PaddleX's zoom (module doc).

  max_pages: more pages raise PdfTooLarge before any is rendered (None: any number);
  keep_first=True renders only the first max_pages instead, as PaddleX serving does with its
  max_num_input_imgs (default 10). max_page_pixels: a page over it at `zoom` raises
  PdfTooLarge (None: no limit). An encrypted, corrupt or truncated PDF raises BadPdf.
  `name` (a file name, "file" of a request) starts every message.
  """
  return list(iter_pages(data, name, max_pages=max_pages, max_page_pixels=max_page_pixels,
                         zoom=zoom, keep_first=keep_first))
