"""Evaluate mode with the official weights on IC15 val lands on the reference numbers that
onnxruntime + PaddleOCR's preprocessing and RecMetric give: on all crops against the
numbers in ../shared/README.md (slow), and on a sample against onnxruntime run here."""
from __future__ import annotations

import json
import os
import string
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import ic15  # noqa: E402
import train_utils  # noqa: E402

sys.path.insert(0, str(train_utils.REPO / "configs"))
import v4_mobile  # noqa: E402

# ../shared/README.md: the official PP-OCRv4 mobile ONNX in onnxruntime, PaddleOCR's
# preprocessing, greedy CTC, RecMetric (spaces ignored).
REF = dict(acc=0.6505, norm_edit_dis=0.8437, filtered_acc=0.6837, filtered_ned=0.8613)


def _evaluate(dataset_dir, out_dir) -> dict:
  from textrec.training import evaluate  # pylint: disable=g-import-not-at-top
  cfg = v4_mobile.get_config()
  with cfg.unlocked():
    cfg.mode, cfg.dataset_dir, cfg.output_dir = "evaluate", str(dataset_dir), str(out_dir)
  assert evaluate.run(cfg) == 0
  r = json.loads((out_dir / "evaluate_result.json").read_text())
  assert r["weight_path"] == "official"
  return r


@pytest.mark.slow
def test_official_weights_on_ic15_val(ic15_dir, tmp_path):
  r = _evaluate(ic15_dir, tmp_path)
  assert r["num_samples"] == 2077
  assert r["acc"] == pytest.approx(REF["acc"], abs=3e-3)
  assert r["norm_edit_dis"] == pytest.approx(REF["norm_edit_dis"], abs=3e-3)
  assert r["filtered"]["acc"] == pytest.approx(REF["filtered_acc"], abs=3e-3)
  assert r["filtered"]["norm_edit_dis"] == pytest.approx(REF["filtered_ned"], abs=3e-3)


def _rec_metric(preds: list[str], targets: list[str], is_filter: bool) -> tuple[float, float]:
  """PaddleOCR's RecMetric, written out here: spaces ignored, optionally [0-9a-zA-Z] only and
  lower-cased; (acc, 1 - mean Levenshtein distance / longer length)."""
  def clean(s):
    s = s.replace(" ", "")
    return "".join(c for c in s if c in string.digits + string.ascii_letters).lower() \
        if is_filter else s

  def distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
      prev, d[0] = d[0], i
      for j in range(1, len(b) + 1):
        prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return d[len(b)]

  pairs = [(clean(p), clean(t)) for p, t in zip(preds, targets)]
  acc = sum(p == t for p, t in pairs) / len(pairs)
  ned = sum(distance(p, t) / max(len(p), len(t), 1) for p, t in pairs) / len(pairs)
  return acc, 1.0 - ned


def test_official_weights_on_an_ic15_sample(ic15_dir, tmp_path):
  """The first TEXTREC_IC15_N (default 200) val crops: evaluate mode's four numbers against
  onnxruntime on the official ONNX with PaddleX's batching and RecMetric as defined, within
  one crop's worth (padding to a batch's widest may change a text; 3e-3 on large samples)."""
  import cv2  # pylint: disable=g-import-not-at-top

  import official_onnx  # pylint: disable=g-import-not-at-top
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  lines = ic15.val_lines(ic15_dir, ic15.sample_size(200))
  data = tmp_path / "data"
  data.mkdir()
  (data / "val.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  (data / "images").symlink_to(ic15_dir / "images")
  r = _evaluate(data, tmp_path)
  assert r["num_samples"] == len(lines)

  _, cs = official.load_official("PP-OCRv4_mobile_rec")
  run = official_onnx.session(official.official_onnx_path("PP-OCRv4_mobile_rec"))
  images = [cv2.imread(str(ic15_dir / ln.split("\t")[0])) for ln in lines]
  preds = official_onnx.paddlex_texts(run, images, cs)
  labels = [ln.split("\t", 1)[1] for ln in lines]
  tol = max(3e-3, 1.01 / len(lines))
  for got, is_filter in ((r["case_sensitive"], False), (r["filtered"], True)):
    acc, ned = _rec_metric(preds, labels, is_filter)
    print(f"sample of {len(lines)}, filter={is_filter}: acc {got['acc']:.4f} (onnxruntime "
          f"{acc:.4f}), norm_edit_dis {got['norm_edit_dis']:.4f} ({ned:.4f})")
    assert got["acc"] == pytest.approx(acc, abs=tol)
    assert got["norm_edit_dis"] == pytest.approx(ned, abs=tol)
  assert r["filtered"]["acc"] > 0.5  # real weights read real text
