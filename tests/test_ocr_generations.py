"""The OCR pipeline at each ocr_version's defaults (document orientation, text-line
orientation, detection resize with max_side_limit, the generation's models) against
ReferenceOCR (textrec/pipelines/rapidocr_ref.py: onnxruntime on the generation's official ONNX
files with PaddleX's steps): the same boxes (IoU >= 0.8) and text on >= 98 % of lines.

Needs the PP-OCRv5/v6 detectors and the orientation models registered in textrec (issue 27)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import textrec
from textrec.pipelines import rapidocr_ref

VERSIONS = ("PP-OCRv4", "PP-OCRv5", "PP-OCRv6")
LINES = ("Invoice 2024-117", "Total due: 1,250.00 EUR", "Thank you for your order",
         "Payment within 30 days")


def _check(totals, min_ref: int) -> None:
  n_ours, n_ref, n_match, n_same = (sum(t[k] for t in totals) for k in range(4))
  assert n_ref >= min_ref, totals
  assert n_match >= 0.98 * max(n_ours, n_ref), (n_match, n_ours, n_ref)
  assert n_same >= 0.98 * n_match, (n_same, n_match)


def synthetic_page() -> np.ndarray:
  """A white 560 x 900 page with four printed lines (drawn here, no files)."""
  img = np.full((560, 900, 3), 255, np.uint8)
  for i, text in enumerate(LINES):
    cv2.putText(img, text, (40, 110 + 110 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 3,
                cv2.LINE_AA)
  return img


@pytest.fixture(scope="module", params=VERSIONS)
def pair(request):
  return (request.param, textrec.create_pipeline("OCR", ocr_version=request.param),
          rapidocr_ref.ReferenceOCR(request.param))


SAMPLE = ("img_10.jpg", "ger_1.jpg", "img623.jpg")  # turned 180; small; one-letter lines


@pytest.mark.parametrize("which", ["sample", pytest.param("all", marks=pytest.mark.slow)])
def test_defaults_match_the_reference_on_images(pair, ocr_images_dir, which):
  """The OCR images set (all of it: `slow`): >= 98 % of lines with the same box and text.
  PaddleX's batch padding, the pipeline's default, gave every line's text when this was
  written (v5 191/191, v6 138/138; with "bucket" padding 189/191 and 131/138)."""
  version, pipe, ref = pair
  totals = []
  paths = sorted(ocr_images_dir.glob("*.jpg"))
  for path in paths if which == "all" else [p for p in paths if p.name in SAMPLE]:
    name = path.name
    img = cv2.imread(str(path))
    res = next(pipe.predict(img))
    want = ref(img)
    assert res.ok, res.error
    assert res.doc_preprocessor_res["angle"] == want["angle"], name
    totals.append(rapidocr_ref.compare(res.rec_polys, res.rec_texts, want))
    print(version, name, totals[-1])
  _check(totals, 100 if which == "all" else 8)


def test_synthetic_page_upright_and_turned(pair):
  """Clone-runnable: a page drawn here, upright and turned 90 degrees clockwise (the
  document orientation turns it back)."""
  version, pipe, ref = pair
  page = synthetic_page()
  totals = []
  for img in (page, cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE)):
    res = next(pipe.predict(img))
    want = ref(img)
    assert res.json["res"]["model_settings"]["use_doc_preprocessor"] is True
    assert res.json["res"]["doc_preprocessor_res"]["angle"] == want["angle"]
    assert res.doc_preprocessor_res["output_img"].shape == want["image"].shape
    totals.append(rapidocr_ref.compare(res.rec_polys, res.rec_texts, want))
    print(version, totals[-1], res.rec_texts)
  assert want["angle"] == 90  # the reference turned the turned page back
  _check(totals, 2 * len(LINES))
  off = next(pipe.predict(page, use_doc_orientation_classify=False)).json["res"]
  assert off["model_settings"]["use_doc_preprocessor"] is False
  assert "doc_preprocessor_res" not in off
