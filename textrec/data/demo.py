"""The embedded demo dataset: synthetic text-line crops, deterministic from a seed.

Rendered with fonts that ship inside installed packages (matplotlib's DejaVu and STIX, Pillow's
default font), in the PaddleX layout (images/, train.txt, val.txt, dict.txt). Generated once
into `$TEXTREC_CACHE/demo_data/<VERSION>` (default root ~/.cache/textrec) and moved into place
atomically, so concurrent first uses are safe.

Text uses digits, Latin letters, space and ASCII punctuation: all of it is in PaddleOCR's
ppocr_keys_v1 dictionary, so the official models can fine-tune on it. `dict.txt` holds exactly
the characters the generator draws from (space excluded: use_space_char adds it); the official
model's character set comes from its own metadata, not from this file.
"""
from __future__ import annotations

import os
import string

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from textrec import files

VERSION = "v1"
NUM_TRAIN = 512
NUM_VAL = 128
SEED = 20261126
PUNCT = ".,:;!?-'\"()/&%#@+$*"
ALPHABET = string.digits + string.ascii_letters + PUNCT
_MPL_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
              "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
              "STIXGeneralItalic.ttf")
_WORDS = ("total", "price", "date", "open", "exit", "street", "road", "hotel", "coffee", "bank",
          "sale", "free", "new", "city", "park", "station", "north", "east", "west", "south",
          "market", "table", "stop", "only", "room", "floor", "hour", "day", "text", "paddle",
          "jax", "flax", "model", "train", "cash", "card", "menu", "tea", "bus", "taxi")


def font_files() -> list[str]:
  """TrueType files available from installed packages (matplotlib's mpl-data)."""
  try:
    import matplotlib
    d = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
  except ImportError:
    return []
  return [os.path.join(d, f) for f in _MPL_FONTS if os.path.isfile(os.path.join(d, f))]


def random_text(rng: np.random.Generator) -> str:
  """A word, a number, a code or two words: 1..18 characters from ALPHABET (+ space)."""
  kind = rng.integers(5)
  if kind == 0:
    w = str(rng.choice(_WORDS))
    return [w, w.capitalize(), w.upper()][int(rng.integers(3))]
  if kind == 1:
    a, b = rng.choice(_WORDS, 2)
    return f"{str(a).capitalize()} {b}"
  if kind == 2:
    n = rng.integers(1, 100000)
    return [f"{n}", f"${n / 100:.2f}", f"{n % 31 + 1:02d}/{n % 12 + 1:02d}/20{n % 30:02d}",
            f"{n % 24:02d}:{n % 60:02d}", f"+{n}", f"{n % 100}%"][int(rng.integers(6))]
  chars = list(ALPHABET) if kind == 3 else list(string.ascii_letters + string.digits)
  k = int(rng.integers(2, 13))
  return "".join(rng.choice(chars, k))


def _colour(rng, lo=0, hi=256):
  return tuple(int(c) for c in rng.integers(lo, hi, 3))


def _luma(c) -> float:
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def render(text: str, rng: np.random.Generator, fonts: list[str]) -> np.ndarray:
  """One text-line crop, BGR uint8 [H, W, 3]."""
  size = int(rng.integers(20, 45))
  k = int(rng.integers(len(fonts) + 1))
  font = ImageFont.truetype(fonts[k], size) if k < len(fonts) else ImageFont.load_default(size)
  x0, y0, x1, y1 = font.getbbox(text)
  mx, my = int(rng.integers(2, 14)), int(rng.integers(2, 10))
  w, h = max(1, x1 - x0) + 2 * mx, max(1, y1 - y0) + 2 * my
  bg = _colour(rng)
  fg = _colour(rng)
  while abs(_luma(fg) - _luma(bg)) < 90:
    fg = _colour(rng)
  img = Image.new("RGB", (w, h), bg)
  arr = np.asarray(img).astype(np.float32)
  if rng.random() < 0.4:  # horizontal gradient towards another background colour
    bg2 = np.asarray(_colour(rng), np.float32)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None] * 0.5
    arr = arr * (1 - t) + bg2 * t
  img = Image.fromarray(arr.astype(np.uint8))
  ImageDraw.Draw(img).text((mx - x0, my - y0), text, font=font, fill=fg)
  out = np.asarray(img).astype(np.float32)
  out += rng.normal(0, rng.uniform(0, 10), out.shape)
  out = np.clip(out, 0, 255).astype(np.uint8)
  if rng.random() < 0.3:
    out = cv2.GaussianBlur(out, (3, 3), 0)
  scale = rng.uniform(0.5, 1.3)
  out = cv2.resize(out, (max(4, round(w * scale)), max(4, round(h * scale))),
                   interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
  return cv2.cvtColor(out, cv2.COLOR_RGB2BGR)


def generate(out_dir: str, num_train: int = NUM_TRAIN, num_val: int = NUM_VAL,
             seed: int = SEED) -> None:
  """Writes the dataset into `out_dir` (created; must not hold one already)."""
  rng = np.random.default_rng(seed)
  fonts = font_files()
  os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
  for split, n in (("train", num_train), ("val", num_val)):
    lines = []
    for i in range(n):
      text = random_text(rng)
      img = render(text, rng, fonts)
      rel = f"images/{split}_{i:05d}.png"
      ok, buf = cv2.imencode(".png", img)
      if not ok:
        raise RuntimeError(f"cannot encode {rel}")
      with open(os.path.join(out_dir, rel), "wb") as f:
        f.write(buf.tobytes())
      lines.append(f"{rel}\t{text}\n")
    with open(os.path.join(out_dir, f"{split}.txt"), "w", encoding="utf-8") as f:
      f.writelines(lines)
  with open(os.path.join(out_dir, "dict.txt"), "w", encoding="utf-8") as f:
    f.writelines(c + "\n" for c in ALPHABET)


def demo_dataset_dir() -> str:
  """Path of the demo dataset, generating it on first use (a few seconds)."""
  final = os.path.join(files.cache_root(), "demo_data", VERSION)
  if os.path.isfile(os.path.join(final, "dict.txt")):
    return final
  with files.atomic_dir(final, complete="dict.txt") as tmp:
    generate(tmp)
  return final
