"""Evaluate mode with the official weights on IC15 val lands on the reference numbers that
onnxruntime + PaddleOCR's preprocessing and RecMetric give (../shared/README.md)."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

sys.path.insert(0, str(train_utils.REPO / "configs"))
import v4_mobile  # noqa: E402

# ../shared/README.md: the official PP-OCRv4 mobile ONNX in onnxruntime, PaddleOCR's
# preprocessing, greedy CTC, RecMetric (spaces ignored).
REF = dict(acc=0.6505, norm_edit_dis=0.8437, filtered_acc=0.6837, filtered_ned=0.8613)


@pytest.mark.slow
def test_official_weights_on_ic15_val(ic15_dir, tmp_path):
  if importlib.util.find_spec("rapidocr_onnxruntime") is None:
    pytest.skip("the official weights need rapidocr-onnxruntime (textrec[pretrained])")
  from textrec.training import evaluate
  cfg = v4_mobile.get_config()
  with cfg.unlocked():
    cfg.mode, cfg.dataset_dir, cfg.output_dir = "evaluate", str(ic15_dir), str(tmp_path)
  assert evaluate.run(cfg) == 0
  r = json.loads((tmp_path / "evaluate_result.json").read_text())
  assert r["num_samples"] == 2077 and r["weight_path"] == "official"
  assert r["acc"] == pytest.approx(REF["acc"], abs=3e-3)
  assert r["norm_edit_dis"] == pytest.approx(REF["norm_edit_dis"], abs=3e-3)
  assert r["filtered"]["acc"] == pytest.approx(REF["filtered_acc"], abs=3e-3)
  assert r["filtered"]["norm_edit_dis"] == pytest.approx(REF["filtered_ned"], abs=3e-3)
