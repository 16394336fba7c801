"""Label encodings for training: CTC (optax.ctc_loss layout) and NRTR/GTC (`<s>` ... `</s>`).

Follows PaddleOCR's MultiLabelEncode(gtc_encode=NRTRLabelEncode) (ppocr/data/imaug/label_ops.py):
- A text is dropped when it is empty or longer than `max_text_length` characters (counted
  before unknown characters are removed), when none of its characters is in the dictionary,
  or (NRTR's rule, which MultiLabelEncode applies to every sample) when its known characters
  number `max_text_length - 1` or more.
- Characters outside the dictionary are skipped silently (PaddleOCR does the same).

CTC ids: 0 = blank, `Charset` ids otherwise. NRTR ids: 0 = pad, 1 = <unk>, 2 = <s>, 3 = </s>,
then CTC id + 3 (PaddleOCR's NRTR dictionary is ['blank', '<unk>', '<s>', '</s>'] + chars).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from textrec.charset import Charset

NRTR_PAD, NRTR_UNK, NRTR_BOS, NRTR_EOS = 0, 1, 2, 3
NRTR_OFFSET = 3  # NRTR id = CTC id + 3

# Reasons a text is dropped (keys of the drop counters).
DROP_EMPTY = "empty label"
DROP_TOO_LONG = "label longer than max_text_length"
DROP_NO_KNOWN = "no character of the label is in the dictionary"
DROP_NRTR_LONG = "label has >= max_text_length - 1 known characters (NRTR drops it)"


@dataclasses.dataclass(frozen=True)
class LabelEncoder:
  """Text -> fixed-width label arrays. `L = max_text_length`."""

  charset: Charset
  max_text_length: int = 25

  @property
  def nrtr_width(self) -> int:
    """Width of `label_nrtr`: L + 2 (PaddleOCR's drop rule keeps the content to <= L tokens,
    so the last two columns are always padding; the loss ignores id 0)."""
    return self.max_text_length + 2

  def ctc_ids(self, text: str) -> list[int] | None:
    """PaddleOCR's BaseRecLabelEncode.encode: ids of the known characters, or None (dropped)."""
    if self.drop_reason(text, nrtr=False) is not None:
      return None
    idx = self.charset.index
    return [idx[c] for c in text if c in idx]

  def drop_reason(self, text: str, nrtr: bool = True) -> str | None:
    """Why PaddleOCR's MultiLabelEncode (nrtr=True) or CTCLabelEncode drops `text`, or None."""
    if len(text) == 0:
      return DROP_EMPTY
    if len(text) > self.max_text_length:
      return DROP_TOO_LONG
    idx = self.charset.index
    n = sum(1 for c in text if c in idx)
    if n == 0:
      return DROP_NO_KNOWN
    if nrtr and n >= self.max_text_length - 1:
      return DROP_NRTR_LONG
    return None

  def encode(self, text: str) -> dict[str, np.ndarray] | None:
    """One text -> arrays, or None when PaddleOCR's MultiLabelEncode drops it.

    Returns label_ctc i32[L] (0-padded), label_ctc_pad f32[L] (1 = padding), length i32[],
    label_nrtr i32[L + 2] (<s> ids </s>, 0-padded).
    """
    if self.drop_reason(text) is not None:
      return None
    ids = self.ctc_ids(text)
    L = self.max_text_length
    n = len(ids)
    label = np.zeros((L,), np.int32)
    label[:n] = ids
    pad = np.ones((L,), np.float32)
    pad[:n] = 0.0
    nrtr = np.zeros((self.nrtr_width,), np.int32)
    nrtr[0] = NRTR_BOS
    nrtr[1:n + 1] = np.asarray(ids, np.int32) + NRTR_OFFSET
    nrtr[n + 1] = NRTR_EOS
    return dict(label_ctc=label, label_ctc_pad=pad, length=np.asarray(n, np.int32),
                label_nrtr=nrtr)

  def decode_ctc(self, label: np.ndarray, length: int | None = None) -> str:
    """label_ctc row (+ its length, else up to the first 0) -> text."""
    label = np.asarray(label).tolist()
    if length is None:
      length = label.index(0) if 0 in label else len(label)
    return self.charset.decode(label[:length])

  def decode_nrtr(self, label: np.ndarray) -> str:
    """label_nrtr row -> text (between <s> and the first </s>)."""
    out = []
    for t in np.asarray(label).tolist()[1:]:
      if t == NRTR_EOS or t == NRTR_PAD:
        break
      out.append(t - NRTR_OFFSET)
    return self.charset.decode(out)

  def known_text(self, text: str) -> str:
    """`text` without the characters the dictionary lacks (what the labels hold)."""
    idx = self.charset.index
    return "".join(c for c in text if c in idx)


def stack(encoded: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """List of `LabelEncoder.encode` outputs -> batch arrays with a leading [B] axis."""
  return {k: np.stack([e[k] for e in encoded]) for k in encoded[0]}
