"""RecMetric as PaddleOCR defines it: a hand-computed toy case and Levenshtein properties."""
from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings, strategies as st

from textrec.training import metrics


def test_levenshtein_known_values():
  assert metrics.levenshtein("kitten", "sitting") == 3
  assert metrics.levenshtein("flaw", "lawn") == 2
  assert metrics.levenshtein("", "abc") == 3
  assert metrics.levenshtein("abc", "abc") == 0
  assert metrics.normalized_distance("", "") == 0.0
  assert metrics.normalized_distance("ab", "abcd") == pytest.approx(0.5)


def test_rec_metric_toy_case_by_hand():
  preds = ["hello", "wor ld", "ABC", "", "a-b"]
  targets = ["hello", "world", "abc", "x", "ab"]
  # Case-sensitive, spaces ignored: 2 exact ("hello", "world"); normalised distances
  # 0, 0, 3/3, 1/1, 1/3.
  r = metrics.rec_metric(preds, targets)
  assert r["num"] == 5
  assert r["acc"] == pytest.approx(2 / (5 + 1e-5), abs=1e-12)
  assert r["norm_edit_dis"] == pytest.approx(1 - (2 + 1 / 3) / (5 + 1e-5), abs=1e-12)
  # is_filter: keep [0-9a-zA-Z], lower-case -> "abc" and "ab" now match: 4 exact; only
  # "" vs "x" (distance 1/1) remains.
  f = metrics.rec_metric(preds, targets, is_filter=True)
  assert f["acc"] == pytest.approx(4 / (5 + 1e-5), abs=1e-12)
  assert f["norm_edit_dis"] == pytest.approx(1 - 1 / (5 + 1e-5), abs=1e-12)


def test_accumulates_over_batches_and_checks_lengths():
  m = metrics.RecMetric()
  m.update(["a", "b"], ["a", "c"])
  m.update(["dd"], ["dd"])
  assert m.result()["acc"] == pytest.approx(2 / (3 + 1e-5))
  with pytest.raises(ValueError, match="2 predictions for 1 targets"):
    m.update(["a", "b"], ["a"])
  empty = metrics.RecMetric().result()
  assert empty["acc"] == 0.0 and empty["norm_edit_dis"] == pytest.approx(1.0)


def _reference(a: str, b: str) -> int:
  @functools.lru_cache(maxsize=None)
  def d(i: int, j: int) -> int:
    if i == 0 or j == 0:
      return i + j
    return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
  return d(len(a), len(b))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcé 1", max_size=8), st.text(alphabet="abcé 1", max_size=8))
def test_levenshtein_matches_recursive_definition(a, b):
  d = metrics.levenshtein(a, b)
  assert d == _reference(a, b) == metrics.levenshtein(b, a)
  assert 0.0 <= metrics.normalized_distance(a, b) <= 1.0
