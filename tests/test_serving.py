"""The HTTP service (textrec/serving): protocol, dynamic batching parity, limits, bad input,
faults and SIGTERM. Servers run on a free loopback port, in a thread or a subprocess; every
request loop is bounded. Load, soak and kill -9 runs: scripts/load_test.py."""
from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
import uvicorn

import rendered_words
from textrec.serving import app as app_lib
from textrec.serving import server as server_lib
from textrec.serving.client import Client, ServerError, encode_image

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "PP-OCRv4_mobile_rec"


@contextlib.contextmanager
def serving(app, port: int = 0):
  """Runs `app` with uvicorn in a thread on loopback `port` (0: a free one); yields its URL."""
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                         access_log=False))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  deadline = time.monotonic() + 20
  while not server.started:
    assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
    time.sleep(0.01)
  port = server.servers[0].sockets[0].getsockname()[1]
  try:
    yield f"http://127.0.0.1:{port}"
  finally:
    server.should_exit = True
    thread.join(20)


def post(url: str, path: str, body: bytes) -> tuple[int, dict, dict]:
  """One request on a fresh connection -> (status, headers, JSON body)."""
  with Client(url, retries=0) as c:
    status, headers, data = c.request("POST", path, body)
  return status, headers, json.loads(data)


def png_header(w: int, h: int) -> bytes:
  """A PNG whose IHDR says w x h, with no pixel data (a decompression bomb's header)."""
  chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d +  # noqa: E731
                        struct.pack(">I", zlib.crc32(t + d)))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
          chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
  return base64.b64encode(data).decode()


def fake_fn(delay: float = 0.0, poison_width: int = -1):
  """A batch_fn reading each crop's width as its text; raises for a crop `poison_width` wide.
  Records batch sizes."""
  sizes = []

  def fn(images):
    sizes.append(len(images))
    time.sleep(delay)
    if any(im.shape[1] == poison_width for im in images):
      raise RuntimeError("poisoned crop")
    return [(str(im.shape[1]), 1.0) for im in images]

  fn.sizes = sizes
  return fn


def crop(width: int) -> np.ndarray:
  return np.full((32, width, 3), 200, np.uint8)


# ----------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def recognizer():
  """The official weights through onnxruntime (the official ONNX as an inference dir)."""
  return server_lib.load_recognizer(NAME, "", "onnx", max_batch=8)


@pytest.fixture(scope="module")
def crops() -> list[tuple[str, bytes]]:
  """16 word images (PNG bytes), drawn at test time."""
  return [(f"{text}.png", cv2.imencode(".png", img)[1].tobytes())
          for img, text in rendered_words.images(16)]


def test_batched_requests_answer_as_alone(recognizer, crops):
  """Concurrent requests gathered into batches get the text and score each crop gets alone."""
  alone = [recognizer.recognize([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)])[0]
           for _, b in crops]
  limits = app_lib.Limits(max_batch=8, max_delay_ms=100)
  app = app_lib.create_app(recognizer.recognize, limits)
  with serving(app) as url:
    def one(i):
      return post(url, "/text-recognition", json.dumps({"image": b64(crops[i][1])}).encode())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
      singles = list(pool.map(one, range(16)))
      many = post(url, "/text-recognition",
                  json.dumps({"images": [b64(b) for _, b in crops]}).encode())
    with Client(url) as c:
      metrics = c.request("GET", "/metrics")[2].decode()
  for i, (status, _, body) in enumerate(singles):
    assert status == 200 and body["errorCode"] == 0, body
    [got] = body["result"]["texts"]
    assert got["rec_text"] == alone[i][0], crops[i][0]
    assert abs(got["rec_score"] - alone[i][1]) < 1e-5
  assert many[0] == 200
  assert [t["rec_text"] for t in many[2]["result"]["texts"]] == [t for t, _ in alone]
  assert any(t for t, _ in alone)
  # Batching happened: fewer forwards than the 16 + 16 images.
  fwd = float(metrics.split("textrec_batch_size_count ")[1].split()[0])
  assert fwd < 16 + 16, metrics


def test_cli_serves_and_drains_on_sigterm(crops):
  """`--config.mode=serve` in a subprocess: requests in flight when SIGTERM comes are all
  answered, and the process exits 0 saying accepted == answered."""
  env = dict(os.environ, PYTHONPATH=str(REPO), TEXTREC_HUGEPAGES="0")
  proc = subprocess.Popen(
      [sys.executable, "-m", "textrec.main", "--config=configs/v4_mobile.py",
       "--config.mode=serve", "--config.serve.backend=onnx", "--config.serve.port=0",
       "--config.serve.max_delay_ms=50"],
      cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
  try:
    line = ""
    deadline = time.monotonic() + 60
    while " on http://" not in line and time.monotonic() < deadline:
      line = proc.stderr.readline()
      assert line or proc.poll() is None, "server exited before serving"
    url = line.split(" on ")[1].split()[0]
    payload = json.dumps({"images": [b64(b) for _, b in crops[:10]]}).encode()

    def timed_post():
      return post(url, "/text-recognition", payload), time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(4) as pool, Client(url) as c:
      futs = [pool.submit(timed_post) for _ in range(4)]
      accepted = 'textrec_requests_total{endpoint="text-recognition"} 4.0'
      while accepted not in c.request("GET", "/metrics")[2].decode():
        assert time.monotonic() < deadline + 60, "requests not accepted"
        time.sleep(0.01)
      proc.send_signal(signal.SIGTERM)  # all four accepted, their 40 crops not all read yet
      t_term = time.monotonic()
      answers = [f.result(timeout=60) for f in futs]
    assert [a[0][0] for a in answers] == [200] * 4
    assert max(t for _, t in answers) > t_term  # answered after the signal: drained
    assert proc.wait(timeout=60) == 0
    tail = proc.stderr.read()
    assert "4 requests accepted, 4 answered" in tail, tail
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


# ----------------------------------------------------------------------------- protocol


@pytest.fixture(scope="module")
def fake_server():
  """An app over a fake recognizer (text = crop width), with small limits."""
  limits = app_lib.Limits(max_batch=4, max_delay_ms=20, max_queue=64, max_body_bytes=1 << 20,
                          max_image_pixels=10_000_000)
  with serving(app_lib.create_app(fake_fn(), limits)) as url:
    yield url


def _png(img: np.ndarray) -> bytes:
  return cv2.imencode(".png", img)[1].tobytes()


GOOD = _png(crop(77))
BAD_INPUTS = [  # (name, body, status, words in errorMsg)
    ("invalid base64", {"image": "not base64!"}, 400, "image: not valid base64"),
    ("non-image bytes", {"image": b64(b"hello, world" * 10)}, 400, "not an image"),
    ("truncated PNG", {"image": b64(GOOD[:len(GOOD) // 2])}, 400, "truncated"),
    ("empty body", b"", 400, "empty request body"),
    ("not JSON", b"{image: 1", 400, "not valid JSON"),
    ("JSON list", [1], 422, "expected a JSON object"),
    ("0x0 image", {"image": b64(png_header(0, 0))}, 400, "not an image"),
    ("empty image data", {"image": ""}, 400, "empty"),
    ("bomb 20000x20000", {"image": b64(png_header(20000, 20000))}, 413, "refused before decoding"),
    ("too many pixels", {"image": b64(png_header(5000, 5000))}, 413, "5000x5000"),
    ("image not a string", {"image": 5}, 422, "image must be a base64 string, got int"),
    ("images not a list", {"images": "abc"}, 422, "images must be a list"),
    ("images element", {"images": [b64(GOOD), None]}, 422, "images[1] must be a base64"),
    ("images empty", {"images": []}, 422, "images is empty"),
    ("unknown field", {"image": b64(GOOD), "foo": 1}, 422, "unknown field(s) 'foo'"),
    ("both fields", {"image": b64(GOOD), "images": [b64(GOOD)]}, 422, "exactly one"),
    ("URL", {"image": "http://example.com/a.png"}, 422, "URLs are not fetched"),
    ("2 MB body", {"image": "A" * (2 << 20)}, 413, "exceeds the limit"),
]


@pytest.mark.parametrize("name,body,status,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_answered_and_the_server_keeps_serving(fake_server, name, body, status,
                                                            words):
  raw = body if isinstance(body, bytes) else json.dumps(body).encode()
  got, _, answer = post(fake_server, "/text-recognition", raw)
  assert (got, answer["errorCode"]) == (status, status), answer
  assert words in answer["errorMsg"], answer["errorMsg"]
  assert "\n" not in answer["errorMsg"] and answer["logId"] and "result" not in answer
  ok = post(fake_server, "/text-recognition", json.dumps({"image": b64(GOOD)}).encode())
  assert ok[0] == 200 and ok[2]["result"]["texts"] == [{"rec_text": "77", "rec_score": 1.0}]


def test_50mb_body_gets_413(fake_server):
  got, _, answer = post(fake_server, "/text-recognition", b'{"image": "' + b"A" * (50 << 20) +
                        b'"}')
  assert got == 413 and "exceeds the limit of 1048576" in answer["errorMsg"]


def test_thin_images_are_read(fake_server):
  """1xN and Nx1 images are images: answered 200 (a text, maybe empty)."""
  for shape in ((1, 300, 3), (300, 1, 3), (1, 1, 3)):
    got, _, answer = post(fake_server, "/text-recognition",
                          json.dumps({"image": b64(_png(np.zeros(shape, np.uint8)))}).encode())
    assert got == 200 and answer["result"]["texts"][0]["rec_text"] == str(shape[1])


def test_images_in_order_and_client(fake_server, tmp_path):
  path = tmp_path / "c.png"
  path.write_bytes(_png(crop(55)))
  with Client(fake_server) as c:
    assert c.health()
    got = c.recognize([crop(10), path, _png(crop(30)), crop(40), crop(50)])
    assert [t["rec_text"] for t in got] == ["10", "55", "30", "40", "50"]
    with pytest.raises(ServerError, match="HTTP 422") as e:
      c.call("/text-recognition", {"images": 3})
    assert e.value.error_code == 422
    status, _, data = c.request("GET", "/nowhere")
    assert status == 404 and json.loads(data)["errorCode"] == 404


def test_ocr_is_501_until_a_pipeline_is_plugged_in(fake_server):
  got, _, answer = post(fake_server, "/ocr", json.dumps({"file": b64(GOOD),
                                                         "fileType": 1}).encode())
  assert got == 501 and answer["errorCode"] == 501
  assert "OCR pipeline" in answer["errorMsg"] and "not available" in answer["errorMsg"]


def test_ocr_serves_a_plugged_in_pipeline():
  seen = []

  class Pipeline:
    def predict(self, images, **params):
      seen.append(params)
      if params.get("text_det_thresh", 0) > 1:
        raise ValueError("thresh must be in [0, 1]; got 2")
      return [{"rec_texts": ["a", "b"], "rec_scores": np.array([0.5, 0.25]),
               "rec_polys": np.zeros((2, 4, 2), np.int32), "size": im.shape[:2]}
              for im in images]

  with serving(app_lib.create_app(fake_fn(), pipeline=Pipeline())) as url, Client(url) as c:
    res = c.ocr(crop(20))
    assert res == {"rec_texts": ["a", "b"], "rec_scores": [0.5, 0.25],
                   "rec_polys": [[[0, 0]] * 4] * 2, "size": [32, 20]}
    got, _, answer = post(url, "/ocr", json.dumps({"file": b64(GOOD), "fileType": 2}).encode())
    assert got == 422 and answer["errorMsg"] == "fileType: Input should be 0 or 1 (got 2)"
    body = {"file": b64(GOOD), "useDocOrientationClassify": False, "textDetMaxSideLimit": 2000}
    assert post(url, "/ocr", json.dumps(body).encode())[0] == 200
    assert seen[-1] == {"use_doc_orientation_classify": False, "text_det_max_side_limit": 2000}
    got, _, answer = post(url, "/ocr", json.dumps({"file": b64(GOOD), "textDetThresh": 2}).encode())
    assert got == 422 and "thresh" in answer["errorMsg"]
    # Unknown fields are ignored, as PaddleX's request models ignore them.
    got, _, answer = post(url, "/ocr", json.dumps({"file": b64(GOOD), "ocrVersion": 6}).encode())
    assert got == 200 and seen[-1] == {}


def test_health_and_metrics(fake_server):
  with Client(fake_server) as c:
    c.recognize([crop(8)])
    post(fake_server, "/text-recognition", b"")
    status, headers, data = c.request("GET", "/health")
    assert status == 200 and json.loads(data)["errorMsg"] == "Healthy"
    status, headers, data = c.request("GET", "/metrics")
  text = data.decode()
  assert status == 200 and headers["content-type"].startswith("text/plain")
  for name in ('textrec_requests_total{endpoint="text-recognition"}',
               'textrec_errors_total{endpoint="text-recognition",kind="bad_input"}',
               "textrec_queue_depth", "textrec_batch_size_bucket",
               "textrec_request_latency_seconds_bucket"):
    assert name in text, name


# ----------------------------------------------------------------------------- limits, faults


def _concurrent(url: str, bodies: list[bytes]) -> list[tuple[int, dict, dict]]:
  with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
    return list(pool.map(lambda b: post(url, "/text-recognition", b), bodies))


def test_full_queue_answers_503_with_retry_after():
  fn = fake_fn(delay=0.5)
  limits = app_lib.Limits(max_batch=1, max_delay_ms=0, max_queue=2)
  with serving(app_lib.create_app(fn, limits)) as url:
    body = json.dumps({"image": b64(GOOD)}).encode()
    got = _concurrent(url, [body] * 8)
  codes = sorted(s for s, _, _ in got)
  assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
  for status, headers, answer in got:
    if status == 503:
      assert headers["retry-after"] == "1" and "busy" in answer["errorMsg"]


def test_request_past_the_timeout_gets_504_and_is_withdrawn():
  """Two requests behind a slow forward: both 504; the queued one never reaches a forward."""
  fn = fake_fn(delay=0.6)
  limits = app_lib.Limits(max_batch=1, max_delay_ms=0, timeout_s=0.2)
  with serving(app_lib.create_app(fn, limits)) as url:
    got = _concurrent(url, [json.dumps({"image": b64(GOOD)}).encode()] * 2)
    time.sleep(0.8)  # the first forward ends; the withdrawn image must not start another
  assert [s for s, _, _ in got] == [504, 504]
  assert "not answered within 0.2 s" in got[0][2]["errorMsg"]
  assert fn.sizes == [1]


def test_inference_error_fails_only_its_request():
  """A crop that makes the forward raise shares a batch with good ones: it alone gets 500."""
  fn = fake_fn(poison_width=13)
  limits = app_lib.Limits(max_batch=8, max_delay_ms=200)
  with serving(app_lib.create_app(fn, limits)) as url:
    bodies = [json.dumps({"image": b64(_png(crop(w)))}).encode() for w in (11, 12, 13, 14)]
    got = _concurrent(url, bodies)
  assert [s for s, _, _ in got] == [200, 200, 500, 200]
  assert "inference failed: RuntimeError: poisoned crop" in got[2][2]["errorMsg"]
  assert [a["result"]["texts"][0]["rec_text"] for i, (_, _, a) in enumerate(got) if i != 2] == \
      ["11", "12", "14"]
  assert max(fn.sizes) > 1  # they were batched together, then retried one by one


def test_load_recognizer_rejects_mismatched_backends(tmp_path, recognizer):
  exported = recognizer.source.split(":", 1)[1]
  with pytest.raises(ValueError, match="serve it with backend=onnx"):
    server_lib.load_recognizer(NAME, exported, "jax", 8)
  (tmp_path / "ckpt" / "best_model" / "1").mkdir(parents=True)  # a run dir, by its layout
  with pytest.raises(ValueError, match="backend must be one of"):
    server_lib.load_recognizer(NAME, "", "tf", 8)
  with pytest.raises(ValueError, match="backend=onnx serves an exported inference dir"):
    server_lib.load_recognizer(NAME, str(tmp_path / "ckpt"), "onnx", 8)
  with pytest.raises(FileNotFoundError):
    server_lib.load_recognizer(NAME, str(tmp_path / "missing"), "auto", 8)


def test_cli_rejects_bad_limits():
  env = dict(os.environ, PYTHONPATH=str(REPO), TEXTREC_HUGEPAGES="0")
  out = subprocess.run(
      [sys.executable, "-m", "textrec.main", "--config=configs/v4_mobile.py",
       "--config.mode=serve", "--config.serve.max_batch=0"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
  assert out.returncode == 2 and "serve.max_batch must be > 0" in out.stderr


def test_encode_image_roundtrip():
  img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
  back = cv2.imdecode(np.frombuffer(base64.b64decode(encode_image(img)), np.uint8),
                      cv2.IMREAD_COLOR)
  np.testing.assert_array_equal(back, img)


def test_official_onnx_as_inference_dir(tmp_path, recognizer, crops):
  """The official ONNX wrapped as an exported dir: what backend=onnx serves without a
  model_dir; reads as onnxruntime on the official file does through the same pipeline."""
  from textrec.inference import predictor  # pylint: disable=g-import-not-at-top
  from textrec.inference import onnx_backend  # pylint: disable=g-import-not-at-top

  d = onnx_backend.official_dir(NAME, str(tmp_path / "x"))
  assert sorted(os.listdir(d)) == ["inference.onnx", "inference.yml"]
  assert onnx_backend.official_dir(NAME, d) == d  # reused
  model = predictor.create_model(NAME, model_dir=d, backend="onnxruntime")
  assert not model.pad_batch and model.source == f"exported:{d}"
  imgs = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for _, b in crops[:4]]
  assert model.recognize(imgs) == recognizer.recognize(imgs)
