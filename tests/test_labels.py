"""Label encodings: round trips (hypothesis) and PaddleOCR's drop rules."""
from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textrec import charset as charset_lib
from textrec.data import labels

CHARS = string.digits + string.ascii_letters + ".,:;!?-"
CS = charset_lib.from_chars(list(CHARS))
L = 25
ENC = labels.LabelEncoder(CS, L)

known = st.text(alphabet=CHARS + " ", min_size=1, max_size=L - 2)
anything = st.text(alphabet=st.sampled_from(CHARS + " éü€中\t"), min_size=0, max_size=L + 4)


@settings(max_examples=200, deadline=None)
@given(known)
def test_round_trip(text):
  e = ENC.encode(text)
  assert e is not None
  n = len(text)
  assert int(e["length"]) == n
  assert ENC.decode_ctc(e["label_ctc"], n) == text
  assert ENC.decode_nrtr(e["label_nrtr"]) == text
  # optax.ctc_loss layout: paddings are 1 exactly after the text
  np.testing.assert_array_equal(e["label_ctc_pad"], (np.arange(L) >= n).astype(np.float32))
  assert (e["label_ctc"][n:] == 0).all() and (e["label_ctc"][:n] > 0).all()
  # NRTR: <s> ids+3 </s> then zeros, width L + 2
  t = e["label_nrtr"]
  assert t.shape == (L + 2,) and t[0] == labels.NRTR_BOS and t[n + 1] == labels.NRTR_EOS
  np.testing.assert_array_equal(t[1:n + 1], e["label_ctc"][:n] + 3)
  assert (t[n + 2:] == 0).all()
  assert e["label_ctc"].dtype == np.int32 and e["label_nrtr"].dtype == np.int32


def _paddle_drops(text: str) -> bool:
  """PaddleOCR's MultiLabelEncode(gtc=NRTRLabelEncode) drop rule, stated from its docs."""
  if len(text) == 0 or len(text) > L:
    return True
  n_known = sum(c in CS.index for c in text)
  return n_known == 0 or n_known >= L - 1


@settings(max_examples=300, deadline=None)
@given(anything)
def test_drops_exactly_when_paddle_does(text):
  e = ENC.encode(text)
  assert (e is None) == _paddle_drops(text)
  assert (ENC.drop_reason(text) is None) == (e is not None)
  if e is not None:  # unknown characters are skipped, as PaddleOCR does
    assert ENC.decode_ctc(e["label_ctc"], int(e["length"])) == ENC.known_text(text)


@pytest.mark.parametrize("text,reason", [
    ("", labels.DROP_EMPTY),
    ("a" * 26, labels.DROP_TOO_LONG),
    ("中€", labels.DROP_NO_KNOWN),
    ("a" * 24, labels.DROP_NRTR_LONG),
    ("a" * 25, labels.DROP_NRTR_LONG),
    ("a" * 23, None),
    ("a" * 23 + "中€", None),  # 25 characters, 23 known: kept
])
def test_drop_reasons(text, reason):
  assert ENC.drop_reason(text) == reason


def test_official_dictionary_ids(ppocr_keys):
  path = ppocr_keys
  lines = path.read_text(encoding="utf-8").split("\n")
  cs = charset_lib.load_dict(path)
  enc = labels.LabelEncoder(cs, L)
  e = enc.encode("Gen 7")
  # ids independently: 1 + line position in dict.txt; space is the last class
  want = [lines.index(c) + 1 if c != " " else len(cs.chars) for c in "Gen 7"]
  assert e["label_ctc"][:5].tolist() == want
  assert cs.num_classes == 6625
  assert int(e["label_nrtr"][1:6].max()) < cs.num_nrtr_classes


def test_stack_batches():
  b = labels.stack([ENC.encode("ab"), ENC.encode("xyz1")])
  assert b["label_ctc"].shape == (2, L) and b["label_nrtr"].shape == (2, L + 2)
  assert b["length"].tolist() == [2, 4]
