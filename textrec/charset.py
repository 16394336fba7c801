"""Character dictionary <-> integer ids.

CTC ids:  0 = blank, 1..N = dictionary characters, N+1 = space (PaddleOCR `use_space_char`).
NRTR ids: 0 = <blank>(pad), 1 = <unk>, 2 = <s>, 3 = </s>, then the CTC character list
          (PaddleOCR's NRTRLabelDecode builds its list from the CTC one, so the NRTR head has
          len(ctc_chars) + 3 outputs: 6628 for the 6625-class CTC head).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Charset:
  """The characters a recognizer knows, without the CTC blank.

  `chars[i]` has CTC id i + 1.
  """

  chars: tuple[str, ...]

  @property
  def num_classes(self) -> int:
    """CTC classes: blank + characters."""
    return len(self.chars) + 1

  @property
  def num_nrtr_classes(self) -> int:
    """NRTR classes as PaddleOCR counts them (CTC classes + 3)."""
    return self.num_classes + 3

  @property
  def index(self) -> dict[str, int]:
    idx = self.__dict__.get("_index")
    if idx is None:
      idx = {c: i + 1 for i, c in enumerate(self.chars)}
      object.__setattr__(self, "_index", idx)
    return idx

  def unknown(self, text: str) -> list[str]:
    """Characters of `text` that are not in the dictionary (in order, with repeats)."""
    idx = self.index
    return [c for c in text if c not in idx]

  def encode(self, text: str) -> list[int]:
    """Text -> CTC ids (no blank). Raises ValueError naming unknown characters."""
    idx = self.index
    try:
      return [idx[c] for c in text]
    except KeyError as e:
      raise ValueError(f"character {e.args[0]!r} of {text!r} is not in the dictionary") from None

  def decode(self, ids: Sequence[int]) -> str:
    """CTC ids (no blank) -> text."""
    return "".join(self.chars[i - 1] for i in ids)


def load_dict(path: str | os.PathLike, use_space_char: bool = True) -> Charset:
  """Reads a PaddleOCR dictionary file (one character per line, UTF-8)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"dictionary file not found: {path}")
  chars = []
  with open(path, "rb") as f:
    for lineno, raw in enumerate(f, 1):
      line = raw.decode("utf-8").strip("\n").strip("\r\n")
      if line == "":
        continue
      chars.append(line)
  if not chars:
    raise ValueError(f"{path}: dictionary is empty")
  return from_chars(chars, use_space_char)


def paddle_list(chars: Sequence[str]) -> list[str]:
  """The character list as PaddleOCR/PaddleX/RapidOCR files hold it (`character_dict`, ONNX
  `character` metadata): without the trailing space their CTC decoders append."""
  chars = list(chars)
  return chars[:-1] if chars and chars[-1] == " " else chars


def from_chars(chars: Sequence[str], use_space_char: bool = True) -> Charset:
  chars = list(chars)
  if use_space_char and " " not in chars:
    chars.append(" ")
  return Charset(tuple(chars))
