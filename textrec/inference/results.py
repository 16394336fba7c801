"""Per-image recognition results with PaddleX's interface: `.json`, `.print()`,
`.save_to_img()`, `.save_to_json()`.

`save_to_img` draws "text (score)" under the crop. CJK glyphs need a CJK font: textrec uses
Noto Sans CJK SC from the PyPI package `noto-cjk-sans-otc` (extra `textrec[fonts]`, SIL OFL
1.1), else a system Noto CJK / WenQuanYi font, else matplotlib's DejaVu Sans, which has no CJK
glyphs (they come out as boxes; a warning says so once, at the first text that has some).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# (path, face index in a collection) tried after the noto-cjk-sans-otc package.
_SYSTEM_CJK_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
    ("C:/Windows/Fonts/msyh.ttc", 0),
)
_NOTO_SC_INDEX = 2  # faces of NotoSansCJK-Regular.ttc: JP, KR, SC, TC, HK, ...


@functools.lru_cache(maxsize=1)
def find_font() -> tuple[str | None, int, bool]:
  """-> (font file or None for PIL's built-in, face index, has CJK glyphs)."""
  try:
    import noto_cjk_sans_otc  # pylint: disable=g-import-not-at-top

    path = str(noto_cjk_sans_otc.FONT_PATH)
    if os.path.isfile(path):
      return path, _NOTO_SC_INDEX, True
  except ImportError:
    pass
  for path, index in _SYSTEM_CJK_FONTS:
    if os.path.isfile(path):
      return path, index, True
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    if os.path.isfile(path):
      return path, 0, False
  except ImportError:
    pass
  return None, 0, False


@functools.lru_cache(maxsize=1)
def _fallback_chars() -> frozenset[int] | None:
  """Code points the fallback font draws (its cmap); None when unknown (ASCII assumed)."""
  path, _, _ = find_font()
  if path is None:
    return None
  try:
    from fontTools import ttLib  # pylint: disable=g-import-not-at-top

    with ttLib.TTFont(path, lazy=True) as f:
      return frozenset(f.getBestCmap())
  except Exception:  # noqa: BLE001  (fontTools missing, or a font it cannot read)
    return None


_warned = False


def warn_if_undrawable(text: str) -> None:
  """Warns once per process when `text` has characters the font cannot draw (no CJK font
  installed and, e.g., Chinese text): they come out as boxes."""
  global _warned
  if _warned or text.isascii() or find_font()[2]:
    return
  drawable = _fallback_chars()
  missing = [c for c in text if not c.isspace() and
             (ord(c) not in drawable if drawable is not None else not c.isascii())]
  if missing:
    _warned = True
    warnings.warn(f"no CJK font found: save_to_img draws characters such as "
                  f"{''.join(missing[:5])!r} as boxes; `pip install textrec[fonts]` "
                  "(noto-cjk-sans-otc) fixes this", stacklevel=4)  # the caller of save_to_img


def get_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
  path, index, _ = find_font()
  if path is None:
    return ImageFont.load_default(size)
  return ImageFont.truetype(path, size, index=index)


def render(img_bgr: np.ndarray, text: str, min_font: int = 12) -> Image.Image:
  """BGR uint8 [H, W, 3] -> RGB PIL image: the crop with `text` on a white band beneath it.

  Font size 6% of the crop's width as PaddleX draws it, shrunk to fit, but never under
  `min_font` px: a longer text widens the canvas instead.
  """
  warn_if_undrawable(text)
  crop = Image.fromarray(np.ascontiguousarray(img_bgr[:, :, ::-1])).convert("RGB")
  w, h = crop.size
  size = max(min_font, int(w * 0.06))
  font = get_font(size)
  while size > min_font and font.getbbox(text)[2] > w:
    size -= 1
    font = get_font(size)
  left, top, right, bottom = font.getbbox(text or " ")
  canvas_w = max(w, right + 2)
  band = int((bottom + max(0, -top)) * 1.2) + 2
  out = Image.new("RGB", (canvas_w, h + band), (255, 255, 255))
  out.paste(crop, (0, 0))
  ImageDraw.Draw(out).text((0, h), text, fill=(0, 0, 0), font=font)
  return out


class ResultFiles:
  """What the per-image results share (TextRecResult, the OCR pipeline's OCRResult): `ok`,
  printing, file naming and `save_to_json`. Needs `json`, `input_path`, `index`, `error`."""

  img_suffix = "_res"  # <input stem><img_suffix>.<ext> for save_to_img into a directory

  @property
  def ok(self) -> bool:
    return self.error is None

  def __str__(self) -> str:
    return str(self.json)

  def print(self, json_format: bool = False, indent: int = 4,
            ensure_ascii: bool = False) -> None:
    """Prints the result: as a Python dict, or as indented JSON when `json_format`."""
    if json_format:
      print(json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii))
    else:
      print(self.json)

  def _stem(self) -> str:
    """The input's stem, `<stem>_<page_index>` for a PDF page (PaddleX's file names)."""
    stem = pathlib.Path(self.input_path).stem if self.input_path else f"array_{self.index}"
    page = getattr(self, "page_index", None)
    return stem if page is None else f"{stem}_{page}"

  def _target(self, save_path: str | os.PathLike, exts: tuple[str, ...], ext: str,
              suffix: str = "_res") -> str:
    """A file path as given, or `<dir>/<input stem><suffix><ext>` for a directory."""
    p = os.fspath(save_path)
    if not p.lower().endswith(exts):
      p = os.path.join(p, f"{self._stem()}{suffix}{ext}")
    os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    return p

  def save_to_json(self, save_path: str | os.PathLike, indent: int = 4,
                   ensure_ascii: bool = False) -> str:
    """Writes `.json` (UTF-8) to a file, or to `<dir>/<input stem>_res.json`."""
    path = self._target(save_path, (".json",), ".json")
    with open(path, "w", encoding="utf-8") as f:
      json.dump(self.json, f, indent=indent, ensure_ascii=ensure_ascii)
    return path


@dataclasses.dataclass
class TextRecResult(ResultFiles):
  """Recognition of one input. `error` is set (and text/score empty) when it failed.

  index: position in the input stream (names array inputs' output files).
  input_img: the BGR uint8 crop as read (None for a failed item).
  model_settings: the runtime that read it, {"backend": ..., "precision": ...}
  (TextRecognizer.model_settings); in `.json` when set.
  """
  index: int
  input_path: str | None
  rec_text: str = ""
  rec_score: float = 0.0
  input_img: np.ndarray | None = dataclasses.field(default=None, repr=False)
  error: str | None = None
  page_index: int | None = None
  model_settings: dict[str, str] | None = None

  @property
  def json(self) -> dict[str, Any]:
    res = {"input_path": self.input_path, "page_index": self.page_index,
           "rec_text": self.rec_text, "rec_score": float(self.rec_score)}
    if self.model_settings is not None:
      res["model_settings"] = dict(self.model_settings)
    if self.error is not None:
      res["error"] = self.error
    return {"res": res}

  def save_to_img(self, save_path: str | os.PathLike) -> str | None:
    """Writes the crop with "text (score)" beneath it; returns the file, None if failed."""
    if self.input_img is None:
      return None
    suffix = pathlib.Path(self.input_path or "x.png").suffix.lower()
    ext = suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
    path = self._target(save_path, (".jpg", ".jpeg", ".png", ".bmp"), ext, self.img_suffix)
    render(self.input_img, f"{self.rec_text} ({self.rec_score:.4f})").save(path)
    return path
