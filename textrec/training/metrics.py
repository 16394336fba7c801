"""Recognition metric, defined as PaddleOCR's RecMetric.

Per sample (pred, target): spaces removed (`ignore_space`), optionally filtered to [0-9a-zA-Z]
and lower-cased (`is_filter`); then
  acc           = correct / (N + 1e-5)
  norm_edit_dis = 1 - sum(levenshtein(p, t) / max(len(p), len(t))) / (N + 1e-5)
(a pair of empty strings has normalised distance 0), with rapidfuzz's Levenshtein as
RecMetric.
"""
from __future__ import annotations

import dataclasses
import string
from typing import Iterable

from rapidfuzz.distance import Levenshtein

EPS = 1e-5
_KEEP = frozenset(string.digits + string.ascii_letters)


def levenshtein(a: str, b: str) -> int:
  """Edit distance with unit insert/delete/substitute costs."""
  return Levenshtein.distance(a, b)


def normalized_distance(a: str, b: str) -> float:
  """levenshtein / max(len): in [0, 1]; 0 for two empty strings (RecMetric's measure)."""
  return Levenshtein.normalized_distance(a, b)


def normalize_text(text: str) -> str:
  """RecMetric's `is_filter`: keep ASCII letters and digits, lower-cased."""
  return "".join(c for c in text if c in _KEEP).lower()


@dataclasses.dataclass
class RecMetric:
  """Accumulates over batches; `result()` gives {"acc", "norm_edit_dis", "num"}."""

  is_filter: bool = False
  ignore_space: bool = True
  correct: int = 0
  total: int = 0
  edit_sum: float = 0.0

  def _clean(self, text: str) -> str:
    if self.ignore_space:
      text = text.replace(" ", "")
    if self.is_filter:
      text = normalize_text(text)
    return text

  def update(self, preds: Iterable[str], targets: Iterable[str]) -> None:
    preds, targets = list(preds), list(targets)
    if len(preds) != len(targets):
      raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
    for p, t in zip(preds, targets):
      p, t = self._clean(p), self._clean(t)
      self.edit_sum += normalized_distance(p, t)
      self.correct += int(p == t)
      self.total += 1

  def result(self) -> dict[str, float]:
    return {
        "acc": self.correct / (self.total + EPS),
        "norm_edit_dis": 1.0 - self.edit_sum / (self.total + EPS),
        "num": self.total,
    }


def rec_metric(preds: Iterable[str], targets: Iterable[str], is_filter: bool = False,
               ignore_space: bool = True) -> dict[str, float]:
  """One-shot RecMetric over paired lists of strings."""
  m = RecMetric(is_filter=is_filter, ignore_space=ignore_space)
  m.update(preds, targets)
  return m.result()
