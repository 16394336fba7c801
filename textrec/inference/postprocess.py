"""Greedy CTC decoding, as PaddleOCR's `CTCLabelDecode` (ppocr/postprocess/rec_postprocess.py).

Per row: argmax over classes, keep a frame when its id differs from the previous frame's and
is not the blank (0); the text is the kept ids' characters, the score the mean of the kept
frames' max probabilities, and 0.0 when no frame is kept.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from textrec.charset import Charset

BLANK = 0


def greedy_select(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """probs f32[B, T, C] -> (ids i[B, T], max_probs f32[B, T], keep bool[B, T])."""
  probs = np.asarray(probs)
  if probs.ndim != 3:
    raise ValueError(f"expected probabilities [B, T, C]; got shape {probs.shape}")
  ids = probs.argmax(axis=-1)
  max_probs = np.take_along_axis(probs, ids[..., None], axis=-1)[..., 0]
  keep = ids != BLANK
  keep[:, 1:] &= ids[:, 1:] != ids[:, :-1]
  return ids, max_probs, keep


def scores_of(max_probs: np.ndarray, keep: np.ndarray) -> np.ndarray:
  """Mean max-probability of the kept frames per row, 0.0 for a row that keeps none: f64[B]."""
  n = keep.sum(axis=1)
  total = np.where(keep, max_probs.astype(np.float64), 0.0).sum(axis=1)
  return np.where(n > 0, total / np.maximum(n, 1), 0.0)


def ctc_greedy_decode(probs: np.ndarray,
                      charset: Charset | Sequence[str]) -> list[tuple[str, float]]:
  """probs f32[B, T, C] (softmax outputs) -> [(text, score)] * B.

  `charset`: a Charset, or the characters of CTC ids 1..C-1 in order (no blank).
  """
  chars = charset.chars if isinstance(charset, Charset) else tuple(charset)
  ids, max_probs, keep = greedy_select(probs)
  if ids.size and ids.max() > len(chars):
    raise ValueError(f"class id {int(ids.max())} is outside the {len(chars)}-character "
                     "dictionary (+ blank): model and dictionary do not match")
  scores = scores_of(max_probs, keep)
  table = np.asarray(("",) + chars, dtype=object)  # id -> character, blank -> ""
  return [("".join(table[ids[b][keep[b]]]), float(scores[b])) for b in range(ids.shape[0])]
