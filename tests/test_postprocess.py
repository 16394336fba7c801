"""Greedy CTC decoding vs PaddleOCR's CTCLabelDecode semantics.

The reference runtime is rapidocr-onnxruntime's CTCLabelDecode (a port of PaddleOCR's, the
decoder the official ONNX ships with); hand-made cases pin the rules it encodes.
"""
from __future__ import annotations

import numpy as np
import pytest

from textrec import charset as charset_lib
from textrec.inference import postprocess

CHARS = tuple("abcde")  # ids 1..5; blank 0


def _onehot_probs(ids: list[int], c: int = 6, p: float = 0.9) -> np.ndarray:
  """[1, T, c] probabilities whose argmax per frame is ids[t], with max prob p (or p - t/100)."""
  t = len(ids)
  probs = np.full((1, t, c), (1.0 - p) / (c - 1), np.float32)
  for k, i in enumerate(ids):
    probs[0, k, i] = p - k / 100
  return probs


def test_merges_repeats_and_drops_blanks():
  # a a _ a b b _ _ c  -> "aabc" (blank between the a's keeps both)
  ids = [1, 1, 0, 1, 2, 2, 0, 0, 3]
  probs = _onehot_probs(ids)
  [(text, score)] = postprocess.ctc_greedy_decode(probs, CHARS)
  assert text == "aabc"
  kept = [0, 3, 4, 8]  # first frame of each kept run
  assert score == pytest.approx(np.mean([0.9 - k / 100 for k in kept]), abs=1e-6)


def test_all_blank_is_empty_with_score_zero():
  [(text, score)] = postprocess.ctc_greedy_decode(_onehot_probs([0, 0, 0]), CHARS)
  assert (text, score) == ("", 0.0)


def test_batch_rows_are_independent_and_charset_object_works():
  cs = charset_lib.from_chars(list("xyz"), use_space_char=True)  # x y z ' '
  probs = np.concatenate([_onehot_probs([1, 4, 2], c=5), _onehot_probs([0, 3, 3], c=5)])
  out = postprocess.ctc_greedy_decode(probs, cs)
  assert [t for t, _ in out] == ["x y", "z"]


def test_id_outside_dictionary_is_a_clear_error():
  with pytest.raises(ValueError, match="dictionary"):
    postprocess.ctc_greedy_decode(_onehot_probs([7], c=8), CHARS)


def test_matches_rapidocr_ctc_label_decode_on_random_probs():
  from rapidocr_onnxruntime.ch_ppocr_rec import utils  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  chars = [chr(0x4E00 + i) for i in range(40)]  # CJK characters, as in ppocr_keys_v1
  ref = utils.CTCLabelDecode(character=list(chars))  # appends " " and prepends "blank"
  c = len(chars) + 2
  seen_empty = False
  for t in (1, 5, 40):
    logits = rng.normal(size=(16, t, c)).astype(np.float32) * 3
    logits[..., 0] += rng.uniform(0, 4, size=(16, t)).astype(np.float32)  # many blanks
    logits[:3] = logits[:3, :1]  # runs of a repeated frame
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ours = postprocess.ctc_greedy_decode(probs, charset_lib.from_chars(chars))
    theirs = ref(probs)
    assert [o[0] for o in ours] == [r[0] for r in theirs]
    np.testing.assert_allclose([o[1] for o in ours], [r[1] for r in theirs], atol=1e-6)
    seen_empty |= any(o[0] == "" for o in ours)
  assert seen_empty  # the empty-text case was compared too
