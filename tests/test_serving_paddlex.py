"""/ocr as PaddleX's OCR-pipeline service (textrec/serving/schemas.py, app.py, fetch.py,
visualize.py): PaddleX's documented Python client run unchanged, every request field against
the pipeline API with the same setting, the pictures, `file` URLs (allow-list, redirects,
size, timeout), validation errors, fileType inference and the PDF hook. Clone-runnable: the
page is drawn here; the pipeline is PP-OCRv4 on the official weights."""
from __future__ import annotations

import base64
import http.server
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

import textrec
from test_ocr_generations import synthetic_page
from test_serving import b64, fake_fn, post
from test_serving import serving as serving_on
from textrec.serving import app as app_lib
from textrec.serving import fetch, protocol, visualize
from textrec.serving import server as server_lib

CLIENT = pathlib.Path(__file__).parent / "fixtures" / "paddlex_client" / "ocr_client.py"
PADDLEX_PORT = 8080  # what PaddleX's client example calls


def _port_free(port: int) -> bool:
  with socket.socket() as s:
    try:
      s.bind(("127.0.0.1", port))
      return True
    except OSError:
      return False


def jpg(img: np.ndarray) -> bytes:
  return cv2.imencode(".jpg", img)[1].tobytes()


def png(img: np.ndarray) -> bytes:
  return cv2.imencode(".png", img)[1].tobytes()


def unb64(s: str) -> np.ndarray:
  return cv2.imdecode(np.frombuffer(base64.b64decode(s), np.uint8), cv2.IMREAD_COLOR)


# ----------------------------------------------------------------------------- real pipeline


@pytest.fixture(scope="module")
def page() -> np.ndarray:
  return synthetic_page()


@pytest.fixture(scope="module")
def pipe():
  """PaddleX's defaults for PP-OCRv4 (document orientation and text-line orientation on)."""
  return textrec.create_pipeline("OCR", ocr_version="PP-OCRv4")


@pytest.fixture(scope="module")
def ocr_url(pipe, page):
  """/ocr over the real pipeline, as `--config.mode=serve` builds it (compiled for the page
  first, as serve compiles before serving; a long timeout for the compiles of new settings);
  on port 8080 when free (PaddleX's client calls it), else on a free port."""
  next(pipe.predict(page))
  app = app_lib.create_app(fake_fn(), app_lib.Limits(timeout_s=600),
                           pipeline=server_lib.ServedOCR(pipe))
  with serving_on(app, PADDLEX_PORT if _port_free(PADDLEX_PORT) else 0) as url:
    yield url


def _ocr(url: str, body: dict) -> tuple[int, dict]:
  status, _, answer = post(url, "/ocr", json.dumps(body).encode())
  return status, answer


def _pruned(res) -> dict:
  return protocol.jsonable(app_lib.prune(res.json["res"]))


def test_paddlex_client_example_runs_unchanged(ocr_url, page, tmp_path):
  """PaddleX's documented Python client, as copied, in a folder holding its ./demo.jpg: it
  asserts 200, prints prunedResult and writes ocrImage to ocr_0.jpg. Its URL is
  localhost:8080; when 8080 is taken here the request reaches the test server through
  requests' standard HTTP_PROXY setting instead (the script still unchanged)."""
  shutil.copy(CLIENT, tmp_path / "client.py")
  cv2.imwrite(str(tmp_path / "demo.jpg"), page)
  env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
  if not ocr_url.endswith(f":{PADDLEX_PORT}"):
    env.update(HTTP_PROXY=ocr_url, NO_PROXY="")
  r = subprocess.run([sys.executable, "client.py"], cwd=tmp_path, env=env, capture_output=True,
                     text=True, timeout=120)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "'rec_texts': ['Invoice 2024-117', 'Total due: 1,250.00 EUR'" in r.stdout, r.stdout
  assert "Output image saved at ocr_0.jpg" in r.stdout
  drawn = cv2.imread(str(tmp_path / "ocr_0.jpg"))
  assert drawn.shape == (page.shape[0], 2 * page.shape[1], 3)


def _heights(polys) -> float:
  return float(np.ptp(np.asarray(polys)[:, :, 1], axis=1).mean())


SLOW = pytest.mark.slow  # a new detector input shape or new crop widths: fresh compiles
# (request field, value, the pipeline's parameter, what the answer shows against the default)
FIELDS = [
    ("useDocOrientationClassify", False, "use_doc_orientation_classify",
     lambda got, d: "doc_preprocessor_res" not in got and "doc_preprocessor_res" in d),
    ("useTextlineOrientation", False, "use_textline_orientation",
     lambda got, d: set(got["textline_orientation_angles"]) == {-1}
     and -1 not in d["textline_orientation_angles"]),
    ("textDetThresh", 0.7, "text_det_thresh",
     lambda got, d: got["text_det_params"]["thresh"] == 0.7),
    ("textDetBoxThresh", 0.85, "text_det_box_thresh",
     lambda got, d: got["text_det_params"]["box_thresh"] == 0.85),
    ("textRecScoreThresh", 1.0, "text_rec_score_thresh",
     lambda got, d: got["rec_texts"] == [] and len(d["rec_texts"]) == 4),
    pytest.param("textDetUnclipRatio", 1.2, "text_det_unclip_ratio",
                 lambda got, d: _heights(got["dt_polys"]) < _heights(d["dt_polys"]), marks=SLOW),
    pytest.param("textDetLimitSideLen", 640, "text_det_limit_side_len",
                 lambda got, d: got["text_det_params"]["limit_side_len"] == 640, marks=SLOW),
    pytest.param("textDetLimitType", "min", "text_det_limit_type",
                 lambda got, d: got["text_det_params"]["limit_type"] == "min", marks=SLOW),
    pytest.param("textDetMaxSideLimit", 800, "text_det_max_side_limit",
                 lambda got, d: got["text_det_params"]["max_side_limit"] == 800, marks=SLOW),
]


@pytest.fixture(scope="module")
def default_answer(ocr_url, page, pipe):
  status, answer = _ocr(ocr_url, {"file": b64(png(page)), "fileType": 1, "visualize": False})
  assert status == 200, answer
  [entry] = answer["result"]["ocrResults"]
  assert entry["prunedResult"] == _pruned(next(pipe.predict(page)))
  return entry["prunedResult"]


def _id(f) -> str:
  return f.values[0] if hasattr(f, "values") else f[0]


@pytest.mark.parametrize("field,value,param,shows", FIELDS, ids=[_id(f) for f in FIELDS])
def test_each_field_answers_as_the_pipeline_api(ocr_url, page, pipe, default_answer, field,
                                                value, param, shows):
  """/ocr with the field set == pipeline.predict(page, param=value), and differs from the
  default answer as the setting says."""
  status, answer = _ocr(ocr_url, {"file": b64(png(page)), "fileType": 1, "visualize": False,
                                  field: value})
  assert status == 200, answer
  got = answer["result"]["ocrResults"][0]["prunedResult"]
  assert got == _pruned(next(pipe.predict(page, **{param: value})))
  assert got != default_answer and shows(got, default_answer)


def test_older_paddlex_spellings(ocr_url, page):
  """PaddleX 3.0.0rc's nested inferenceParams and useTextLineOrientation answer as today's
  top-level fields; a top-level field wins over its nested twin."""
  answer = lambda **fields: _answer(ocr_url, page, fields)  # noqa: E731
  nested = answer(inferenceParams={"textDetBoxThresh": 0.85, "textRecScoreThresh": 0.99})
  assert nested == answer(textDetBoxThresh=0.85, textRecScoreThresh=0.99)
  assert nested["text_det_params"]["box_thresh"] == 0.85
  assert answer(useTextLineOrientation=False) == answer(useTextlineOrientation=False)
  assert answer(textDetThresh=0.7, inferenceParams={"textDetThresh": 0.2}) == \
      answer(textDetThresh=0.7)


@SLOW
def test_paddlex_3_0_beta_max_long_side(ocr_url, page):
  """3.0.0b's inferenceParams.maxLongSide: the longest side detection sees
  (text_det_max_side_limit)."""
  got = _answer(ocr_url, page, {"inferenceParams": {"maxLongSide": 800}})
  assert got == _answer(ocr_url, page, {"textDetMaxSideLimit": 800})
  assert got["text_det_params"]["max_side_limit"] == 800


def _answer(url: str, page: np.ndarray, fields: dict) -> dict:
  status, a = _ocr(url, {"file": b64(png(page)), "fileType": 1, "visualize": False, **fields})
  assert status == 200, a
  return a["result"]["ocrResults"][0]["prunedResult"]


def test_refused_fields_are_one_line_422(ocr_url, page, default_answer):
  for field in ("useDocUnwarping", "returnWordBox"):
    status, a = _ocr(ocr_url, {"file": b64(png(page)), field: True})
    assert (status, a["errorCode"]) == (422, 422), a
    assert a["errorMsg"].startswith(f"{field}: ") and "\n" not in a["errorMsg"]
    status, a = _ocr(ocr_url, {"file": b64(png(page)), "visualize": False, field: False})
    assert status == 200 and a["result"]["ocrResults"][0]["prunedResult"] == default_answer


def test_pictures_decode_and_show_the_boxes(ocr_url, page, pipe):
  """A page turned 90 degrees: the document orientation turns it back. ocrImage is PaddleX's
  drawing on what detection saw (boxes filled on the left, text on white on the right),
  inputImage the page as sent, docPreprocessingImage input | turned | unwarped + captions."""
  turned = cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE)
  status, answer = _ocr(ocr_url, {"file": b64(png(turned)), "fileType": 1})  # visualize: null
  assert status == 200, answer
  [entry] = answer["result"]["ocrResults"]
  assert answer["result"]["dataInfo"] == {"type": "image", "width": turned.shape[1],
                                          "height": turned.shape[0]}
  det = next(pipe.predict(turned)).doc_preprocessor_res["output_img"]
  assert det.shape == page.shape  # turned back
  ocr_img, inp, pre = (unb64(entry[k]) for k in ("ocrImage", "inputImage",
                                                 "docPreprocessingImage"))
  h, w = det.shape[:2]
  assert ocr_img.shape == (h, 2 * w, 3)
  assert np.abs(inp.astype(int) - turned).mean() < 3  # JPEG of the input
  left, right = ocr_img[:, :w].astype(int), ocr_img[:, w:].astype(int)
  inside = np.zeros((h, w), np.uint8)
  for poly in entry["prunedResult"]["rec_polys"]:
    cv2.fillPoly(inside, [np.asarray(poly, np.int32)], 1)
  inside = inside.astype(bool)
  assert len(entry["prunedResult"]["rec_polys"]) == 4
  assert np.abs(left - det)[inside].mean() > 20       # boxes painted
  assert np.abs(left - det)[~inside].mean() < 3       # the rest is the image
  assert (right[~inside] > 200).mean() > 0.97          # white panel ...
  assert (right[inside] < 128).any()                   # ... with the texts drawn in the boxes
  th, tw = turned.shape[:2]
  full_h, full_w = max(th, h) + visualize.CAPTION_H, tw + 2 * w  # 2360 wide: scaled to 2000
  f = 2000 / full_w
  assert pre.shape == (int(f * full_h), 2000, 3)
  pre = cv2.resize(pre, (full_w, full_h)).astype(int)
  assert np.abs(pre[:th, :tw] - turned).mean() < 8                 # input
  assert np.abs(pre[:h, tw:tw + w] - det).mean() < 8               # turned back
  assert np.abs(pre[:h, tw + w:] - det).mean() < 8                 # (not unwarped)
  assert (pre[max(th, h):] < 128).any()                            # captions


# ----------------------------------------------------------------------------- fake pipeline


class Recorder:
  """A pipeline answering one fixed line per image and recording what it was given."""

  def __init__(self):
    self.calls = []

  def predict(self, images, **params):
    self.calls.append(([im.shape for im in images], params))
    return [{"input_path": None, "page_index": 0, "rec_texts": ["x"], "rec_scores": [0.9],
             "rec_polys": [[[2, 2], [12, 2], [12, 9], [2, 9]]],
             "model_settings": {"use_doc_preprocessor": False, "use_textline_orientation": False}}
            for _ in images]


GOOD = png(np.full((40, 60, 3), 200, np.uint8))

BAD = [  # (name, body, words in errorMsg)
    ("no file", {"fileType": 1}, "file: Field required"),
    ("file not a string", {"file": 3}, "file: Input should be a valid string"),
    ("fileType 2", {"file": b64(GOOD), "fileType": 2}, "fileType: Input should be 0 or 1"),
    ("fileType text", {"file": b64(GOOD), "fileType": "1"}, "fileType: Input should be 0 or 1"),
    ("threshold text", {"file": b64(GOOD), "textDetThresh": "low"},
     "textDetThresh: Input should be a valid number"),
    ("side length 2.5", {"file": b64(GOOD), "textDetLimitSideLen": 2.5},
     "textDetLimitSideLen: Input should be a valid integer"),
    ("visualize maybe", {"file": b64(GOOD), "visualize": "maybe"},
     "visualize: Input should be a valid boolean"),
    ("maxLongSide 0", {"file": b64(GOOD), "inferenceParams": {"maxLongSide": 0}},
     "inferenceParams.maxLongSide: Input should be greater than 0"),
    ("nested limit type", {"file": b64(GOOD), "inferenceParams": {"textDetLimitType": "mid"}},
     "inferenceParams.textDetLimitType: Input should be 'min' or 'max'"),
    ("neither image nor PDF", {"file": b64(b"just text")}, "fileType is null"),
]


@pytest.fixture(scope="module")
def recorder_url():
  rec = Recorder()
  with serving_on(app_lib.create_app(fake_fn(), pipeline=rec)) as url:
    yield url, rec


@pytest.mark.parametrize("name,body,words", BAD, ids=[b[0] for b in BAD])
def test_validation_errors_are_one_line_422_naming_the_field(recorder_url, name, body, words):
  url, _ = recorder_url
  status, a = _ocr(url, body)
  assert (status, a["errorCode"]) == (422, 422), a
  assert words in a["errorMsg"] and "\n" not in a["errorMsg"], a["errorMsg"]
  assert "result" not in a and a["logId"]


def test_lax_values_and_unknown_fields_as_paddlex(recorder_url):
  """PaddleX's pydantic models coerce "0.5" / "true" and ignore unknown fields."""
  url, rec = recorder_url
  status, a = _ocr(url, {"file": b64(GOOD), "fileType": 1, "textDetThresh": "0.5",
                         "useTextlineOrientation": "false", "textDetLimitSideLen": 640.0,
                         "someNewField": 1, "visualize": False})
  assert status == 200, a
  assert rec.calls[-1][1] == {"text_det_thresh": 0.5, "use_textline_orientation": False,
                              "text_det_limit_side_len": 640}
  entry = a["result"]["ocrResults"][0]
  assert entry == {"prunedResult": {"rec_texts": ["x"], "rec_scores": [0.9],
                                    "rec_polys": [[[2, 2], [12, 2], [12, 9], [2, 9]]],
                                    "model_settings": {"use_doc_preprocessor": False,
                                                       "use_textline_orientation": False}}}


def test_file_type_null_is_inferred_from_the_bytes(recorder_url):
  url, rec = recorder_url
  status, a = _ocr(url, {"file": b64(jpg(np.zeros((30, 50, 3), np.uint8))), "visualize": False})
  assert status == 200 and a["result"]["dataInfo"] == {"type": "image", "width": 50,
                                                       "height": 30}
  assert rec.calls[-1][0] == [(30, 50, 3)]


def test_visualize_default_follows_serve_visualize():
  with serving_on(app_lib.create_app(fake_fn(), app_lib.Limits(visualize=False),
                                     pipeline=Recorder())) as url:
    entry = lambda body: _ocr(url, body)[1]["result"]["ocrResults"][0]  # noqa: E731
    assert set(entry({"file": b64(GOOD)})) == {"prunedResult"}
    assert set(entry({"file": b64(GOOD), "visualize": True})) == {"prunedResult", "ocrImage",
                                                                  "inputImage"}


class FakePdf:
  """textrec.inference.pdf's interface: render_pdf(data, name, *, max_pages,
  max_page_pixels) -> BGR pages."""

  def __init__(self):
    self.calls = []

  def render_pdf(self, data, name, *, max_pages, max_page_pixels):
    self.calls.append((data[:5], name, max_pages, max_page_pixels))
    return [np.full((80, 60, 3), 255, np.uint8), np.full((70, 50, 3), 255, np.uint8)]


def test_pdf_pages_answer_one_entry_each(recorder_url, monkeypatch):
  """fileType 0 (or a PDF's bytes with fileType null) -> render_pdf's pages, one ocrResults
  entry each, dataInfo as PaddleX's PDFInfo."""
  url, rec = recorder_url
  fake = FakePdf()
  monkeypatch.setattr(app_lib, "pdf_lib", fake)
  for body in ({"file": b64(b"%PDF-1.7 ..."), "fileType": 0},
               {"file": b64(b"%PDF-1.7 ...")}):
    status, a = _ocr(url, body)
    assert status == 200, a
    assert a["result"]["dataInfo"] == {"type": "pdf", "numPages": 2, "pages": [
        {"width": 60, "height": 80}, {"width": 50, "height": 70}]}
    assert [set(e) for e in a["result"]["ocrResults"]] == \
        [{"prunedResult", "ocrImage", "inputImage"}] * 2
    assert rec.calls[-1][0] == [(80, 60, 3), (70, 50, 3)]
  assert fake.calls[-1] == (b"%PDF-", "file", app_lib.Limits().max_pdf_pages,
                            app_lib.Limits().max_pdf_page_pixels)


def test_jpeg_pictures_fit_2000_by_2000():
  big = np.zeros((1000, 5000, 3), np.uint8)
  assert unb64(visualize.jpeg_b64(big)).shape == (400, 2000, 3)
  assert unb64(visualize.jpeg_b64(big[:, :1500])).shape == (1000, 1500, 3)


# ----------------------------------------------------------------------------- file URLs


class _Files(http.server.BaseHTTPRequestHandler):
  """/page.png, /big.png (over the limit), /slow.png (answers late), /redirect (to
  localhost, an unlisted host), /here (to /page.png on the same host); counts requests."""
  hits: list[str] = []
  body = GOOD

  def do_GET(self):  # pylint: disable=invalid-name
    _Files.hits.append(self.path)
    port = self.server.server_address[1]
    if self.path == "/redirect":
      self.send_response(302)
      self.send_header("Location", f"http://localhost:{port}/page.png")
      self.end_headers()
      return
    if self.path == "/here":
      self.send_response(302)
      self.send_header("Location", "/page.png")
      self.end_headers()
      return
    data = {"/page.png": _Files.body, "/big.png": b"\0" * (2 << 20),
            "/slow.png": _Files.body, "/noext": _Files.body}.get(self.path)
    if data is None:
      self.send_error(404)
      return
    if self.path == "/slow.png":
      time.sleep(1.5)
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    try:
      self.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the app gave up on it (size, timeout)
      pass

  def log_message(self, *args):
    del args


@pytest.fixture(scope="module")
def file_server():
  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
  thread = threading.Thread(target=srv.serve_forever, daemon=True)
  thread.start()
  yield srv.server_address[1]
  srv.shutdown()
  thread.join(10)


@pytest.fixture(scope="module")
def url_app(file_server):
  """Only 127.0.0.1 listed; 1 MiB limit; 0.5 s fetch timeout."""
  rec = Recorder()
  limits = app_lib.Limits(allowed_url_hosts=fetch.parse_hosts("127.0.0.1"),
                          max_body_bytes=1 << 20, url_timeout_s=0.5, visualize=False)
  with serving_on(app_lib.create_app(fake_fn(), limits, pipeline=rec)) as url:
    yield url, rec


def test_url_from_a_listed_host_is_fetched(url_app, file_server):
  url, rec = url_app
  for path in ("/page.png", "/here", "/noext"):
    for file_type in (1, None):
      status, a = _ocr(url, {"file": f"http://127.0.0.1:{file_server}{path}",
                             "fileType": file_type})
      assert status == 200, (path, a)
      assert a["result"]["dataInfo"] == {"type": "image", "width": 60, "height": 40}
      assert rec.calls[-1][0] == [(40, 60, 3)]


@pytest.mark.parametrize("path,host,status,words", [
    ("/page.png", "localhost", 403, "host 'localhost:{port}' is not in serve.allowed_url_hosts"),
    ("/redirect", "127.0.0.1", 403, "host 'localhost:{port}' is not in serve.allowed_url_hosts"),
    ("/big.png", "127.0.0.1", 413, "over the limit of 1048576"),
    ("/missing.png", "127.0.0.1", 422, "answered HTTP 404"),
    ("/slow.png", "127.0.0.1", 422, "did not answer within 0.5 s"),
])
def test_url_refusals(url_app, file_server, path, host, status, words):
  url, _ = url_app
  _Files.hits.clear()
  got, a = _ocr(url, {"file": f"http://{host}:{file_server}{path}", "fileType": 1})
  assert (got, a["errorCode"]) == (status, status), a
  assert words.format(port=file_server) in a["errorMsg"] and "\n" not in a["errorMsg"]
  if path == "/page.png":
    assert _Files.hits == []  # an unlisted host is never contacted
  if path == "/redirect":
    assert _Files.hits == ["/redirect"]  # the redirect is not followed


def test_urls_are_refused_by_default(recorder_url, file_server):
  url, _ = recorder_url
  _Files.hits.clear()
  status, a = _ocr(url, {"file": f"http://127.0.0.1:{file_server}/page.png", "fileType": 1})
  assert status == 403 and "serve.allowed_url_hosts is empty" in a["errorMsg"]
  assert _Files.hits == []


def test_allowed_hosts_parsing():
  assert fetch.parse_hosts(" Example.com, 127.0.0.1:8000 [::1]") == (
      "example.com", "127.0.0.1:8000", "[::1]")
  allowed = fetch.parse_hosts("example.com,127.0.0.1:8000,[::1]")
  assert fetch.host_allowed("https://EXAMPLE.com/a.png", allowed)
  assert fetch.host_allowed("http://127.0.0.1:8000/x", allowed)
  assert not fetch.host_allowed("http://127.0.0.1:8001/x", allowed)
  assert fetch.host_allowed("http://[::1]:9/x", allowed)
  assert not fetch.host_allowed("http://example.com.evil.net/x", allowed)
  assert not fetch.host_allowed("http://evil.net/?example.com", allowed)
  assert not fetch.host_allowed("http://example.com@evil.net/", allowed)
  assert fetch.kind_from_url("http://h/a/b.PDF?x=1") == "pdf"
  assert fetch.kind_from_url("http://h/a.jpeg") == "image"
  assert fetch.kind_from_url("http://h/a") is None
