"""The ASGI app (Starlette): PaddleX serving's JSON protocol over textrec's recognizer.

Every JSON answer carries `logId`, `errorCode` (0 on success, else the HTTP status) and
`errorMsg`; a success also carries `result`.

  POST /text-recognition  {"image": b64} | {"images": [b64, ...]}
                          -> result.texts = [{"rec_text", "rec_score"}, ...] in order
  POST /ocr               {"file": b64, "fileType": 1} -> result.ocrResults[0].prunedResult
                          (configs/ocr.py plugs in the OCR pipeline; 501 without one)
  GET  /health            200 when ready
  GET  /metrics           Prometheus text

Statuses: 400 undecodable input, 413 too large (body, image pixels, image count), 422 wrong
JSON shape, 501 no OCR pipeline, 503 queue full (Retry-After), 504 past the per-request
timeout, 500 inference failed for that request.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import time
import uuid
from typing import Any, Protocol, Sequence

import numpy as np
import prometheus_client as prom
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from textrec.inference import inputs
from textrec.serving.batcher import Batcher, BatchFn, QueueFull


class OcrPipeline(Protocol):
  """What /ocr serves: BGR uint8 images -> one JSON-able dict per image (rec_texts,
  rec_scores, rec_polys, ...), as PaddleX's OCR pipeline results."""

  def predict(self, images: Sequence[np.ndarray]) -> Sequence[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class Limits:
  """What a server takes (config.serve's fields of the same names)."""
  max_batch: int = 32
  max_delay_ms: float = 5.0
  max_queue: int = 256
  max_image_pixels: int = 16_000_000
  max_body_bytes: int = 8_000_000
  timeout_s: float = 30.0


class ApiError(Exception):
  """An answer other than success: HTTP status and one line saying what is wrong."""

  def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
    super().__init__(message)
    self.status, self.message, self.headers = status, message, headers or {}


_KIND = {400: "bad_input", 413: "too_large", 422: "invalid_request", 500: "inference",
         501: "not_implemented", 503: "overloaded", 504: "timeout"}


def _answer(status: int, msg: str, result: Any = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
  body = {"logId": uuid.uuid4().hex, "errorCode": 0 if status == 200 else status,
          "errorMsg": msg}
  if result is not None:
    body["result"] = result
  return JSONResponse(body, status_code=status, headers=headers)


# ----------------------------------------------------------------------------- input


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
  """The body as a JSON object; 413 past `max_bytes` (read on to a bound, so the client
  sees the answer rather than a reset), 400 empty or not JSON, 422 not an object."""
  declared = request.headers.get("content-length")
  if declared is not None and declared.isdigit() and int(declared) > 8 * max_bytes:
    raise ApiError(413, f"request body of {int(declared)} bytes exceeds the limit of "
                        f"{max_bytes} (serve.max_body_bytes)")
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size <= max_bytes:
      chunks.append(chunk)
    elif size > 8 * max_bytes:
      break
  if size > max_bytes:
    raise ApiError(413, f"request body of {size}{'+' if size > 8 * max_bytes else ''} bytes "
                        f"exceeds the limit of {max_bytes} (serve.max_body_bytes)")
  if not size:
    raise ApiError(400, 'empty request body; expected JSON such as {"image": "<base64>"}')
  try:
    body = json.loads(b"".join(chunks))
  except (ValueError, UnicodeDecodeError) as e:
    raise ApiError(400, f"request body is not valid JSON ({e})") from None
  if not isinstance(body, dict):
    raise ApiError(422, f"expected a JSON object, got {type(body).__name__}")
  return body


def check_fields(body: dict[str, Any], allowed: Sequence[str], endpoint: str) -> None:
  unknown = sorted(set(body) - set(allowed))
  if unknown:
    raise ApiError(422, f"unknown field(s) {', '.join(map(repr, unknown))}; {endpoint} takes "
                        f"{', '.join(map(repr, allowed))}")


def decode_b64_image(data: Any, name: str, max_pixels: int) -> np.ndarray:
  """A base64 string (or data: URL) -> BGR uint8; the pixel count is checked from the header
  before anything is decoded (decompression bombs cost nothing)."""
  if not isinstance(data, str):
    raise ApiError(422, f"{name} must be a base64 string, got {type(data).__name__}")
  if data.startswith(("http://", "https://")):
    raise ApiError(422, f"{name}: URLs are not fetched; send the image as base64")
  if data.startswith("data:"):
    data = data.partition(",")[2]
  try:
    buf = base64.b64decode(data, validate=True)
  except (binascii.Error, ValueError) as e:
    raise ApiError(400, f"{name}: not valid base64 ({e})") from None
  if not buf:
    raise ApiError(400, f"{name}: empty (no bytes after base64 decoding)")
  header = inputs.header_pixels(buf)
  if header is None:
    raise ApiError(400, f"{name}: not an image (unrecognised format or invalid header; send "
                        "PNG, JPEG, BMP, TIFF or WebP)")
  pixels, size = header
  if pixels == 0:
    raise ApiError(400, f"{name}: empty image ({size})")
  if pixels > max_pixels:
    raise ApiError(413, f"{name}: a {size} image exceeds the limit of {max_pixels} pixels "
                        "(serve.max_image_pixels); refused before decoding")
  img, err = inputs.decode_image(buf, name)
  if err is not None:
    raise ApiError(400, err)
  return img


# ----------------------------------------------------------------------------- app


class _Metrics:
  """Per-app Prometheus metrics (own registry, so several apps may live in one process)."""

  def __init__(self, batcher: Batcher):
    self.registry = r = prom.CollectorRegistry()
    self.requests = prom.Counter("textrec_requests", "Requests received", ["endpoint"],
                                 registry=r)
    self.errors = prom.Counter("textrec_errors", "Error answers", ["endpoint", "kind"],
                               registry=r)
    self.images = prom.Counter("textrec_images", "Images recognised", registry=r)
    self.latency = prom.Histogram(
        "textrec_request_latency_seconds", "Request latency", ["endpoint"], registry=r,
        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
    self.batch = prom.Histogram("textrec_batch_size", "Images per forward", registry=r,
                                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
    queue = prom.Gauge("textrec_queue_depth", "Images waiting for a batch", registry=r)
    queue.set_function(lambda: batcher.depth)


def create_app(batch_fn: BatchFn, limits: Limits = Limits(), pipeline: OcrPipeline | None = None,
               info: dict[str, Any] | None = None) -> Starlette:
  """The app. batch_fn: BGR images -> [(text, score)] (TextRecognizer.recognize); pipeline:
  the OCR pipeline /ocr serves (None: 501); info: shown by /health.

  `app.state.counts` holds "accepted" and "answered" request counts (equal after a drain).
  """
  batcher = Batcher(batch_fn, limits.max_batch, limits.max_delay_ms / 1e3, limits.max_queue)
  metrics = _Metrics(batcher)
  batcher.on_batch = metrics.batch.observe
  counts = {"accepted": 0, "answered": 0}

  def endpoint(name: str, handler):
    async def wrapped(request: Request) -> Response:
      counts["accepted"] += 1
      metrics.requests.labels(name).inc()
      t0 = time.perf_counter()
      try:
        result = await asyncio.wait_for(handler(request), limits.timeout_s)
        resp = _answer(200, "Success", result)
      except asyncio.TimeoutError:
        metrics.errors.labels(name, "timeout").inc()
        resp = _answer(504, f"not answered within {limits.timeout_s:g} s (serve.timeout_s)")
      except ApiError as e:
        metrics.errors.labels(name, _KIND.get(e.status, str(e.status))).inc()
        resp = _answer(e.status, e.message, headers=e.headers)
      except Exception as e:  # pylint: disable=broad-except
        metrics.errors.labels(name, "internal").inc()
        resp = _answer(500, f"internal error: {type(e).__name__}: {e}")
      metrics.latency.labels(name).observe(time.perf_counter() - t0)
      counts["answered"] += 1
      return resp
    return wrapped

  async def recognize(images: list[np.ndarray]) -> list[tuple[str, float]]:
    try:
      return await batcher.submit(images)  # cancelled past the timeout: images withdrawn
    except QueueFull as e:
      raise ApiError(503, f"server busy: {e}; retry later", {"Retry-After": "1"}) from None
    except Exception as e:  # pylint: disable=broad-except
      raise ApiError(500, f"inference failed: {type(e).__name__}: {e}") from None

  async def text_recognition(request: Request) -> dict[str, Any]:
    body = await read_json(request, limits.max_body_bytes)
    check_fields(body, ("image", "images"), "/text-recognition")
    if ("image" in body) == ("images" in body):
      raise ApiError(422, 'give exactly one of "image" (base64) or "images" (list of base64)')
    if "image" in body:
      named = [("image", body["image"])]
    else:
      if not isinstance(body["images"], list):
        raise ApiError(422, f"images must be a list of base64 strings, got "
                            f"{type(body['images']).__name__}")
      if not body["images"]:
        raise ApiError(422, "images is empty")
      if len(body["images"]) > limits.max_queue:
        raise ApiError(413, f"{len(body['images'])} images exceed the limit of "
                            f"{limits.max_queue} per request (serve.max_queue)")
      named = [(f"images[{i}]", b) for i, b in enumerate(body["images"])]
    images = await run_in_threadpool(
        lambda: [decode_b64_image(b, n, limits.max_image_pixels) for n, b in named])
    texts = await recognize(images)
    metrics.images.inc(len(images))
    return {"texts": [{"rec_text": t, "rec_score": float(s)} for t, s in texts]}

  async def ocr(request: Request) -> dict[str, Any]:
    if pipeline is None:
      raise ApiError(501, "the OCR pipeline (text detection + recognition) is not available "
                          "on this server: start it with --config=configs/ocr.py, or "
                          "recognise cropped text lines with /text-recognition")
    body = await read_json(request, limits.max_body_bytes)
    check_fields(body, ("file", "fileType"), "/ocr")
    if "file" not in body:
      raise ApiError(422, 'missing field "file" (base64 image)')
    if body.get("fileType", 1) != 1:
      raise ApiError(422, f"fileType must be 1 (image); got {body['fileType']!r} (PDF input "
                          "is not supported)")
    img = await run_in_threadpool(decode_b64_image, body["file"], "file",
                                  limits.max_image_pixels)
    try:
      [res] = await run_in_threadpool(pipeline.predict, [img])
    except Exception as e:  # pylint: disable=broad-except
      raise ApiError(500, f"OCR failed: {type(e).__name__}: {e}") from None
    h, w = img.shape[:2]
    return {"ocrResults": [{"prunedResult": _jsonable(res)}],
            "dataInfo": {"type": "image", "width": w, "height": h}}

  async def health(request: Request) -> Response:
    del request
    if not batcher.running:
      return _answer(503, "not ready")
    return _answer(200, "Healthy", dict(info or {}))

  async def metrics_text(request: Request) -> Response:
    del request
    return Response(prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST)

  @contextlib.asynccontextmanager
  async def lifespan(app):
    del app
    batcher.start()
    yield
    await batcher.stop()

  async def http_error(request: Request, exc: Exception) -> Response:
    del request
    status = getattr(exc, "status_code", 500)
    return _answer(status, str(getattr(exc, "detail", exc)), headers=getattr(exc, "headers",
                                                                              None))

  app = Starlette(routes=[
      Route("/text-recognition", endpoint("text-recognition", text_recognition),
            methods=["POST"]),
      Route("/ocr", endpoint("ocr", ocr), methods=["POST"]),
      Route("/health", health, methods=["GET"]),
      Route("/metrics", metrics_text, methods=["GET"]),
  ], lifespan=lifespan, exception_handlers={HTTPException: http_error})
  app.state.counts = counts
  app.state.batcher = batcher
  return app


def _jsonable(x: Any) -> Any:
  """numpy arrays and scalars inside dicts/lists -> plain JSON types."""
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, np.generic):
    return x.item()
  return x
