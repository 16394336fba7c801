"""The ASGI app (Starlette): PaddleX serving's JSON protocol (textrec.serving.protocol) over
textrec's recognizer and OCR pipeline.

  POST /text-recognition  {"image": b64} | {"images": [b64, ...]}
                          -> result.texts = [{"rec_text", "rec_score"}, ...] in order
  POST /ocr               {"file": b64, "fileType": 1} -> result.ocrResults[0].prunedResult
                          (configs/ocr.py plugs in the OCR pipeline; 501 without one);
                          optional PaddleX settings for this request: OCR_PARAMS
  GET  /health            200 when ready
  GET  /metrics           Prometheus text

Statuses: 400 undecodable input, 413 too large (body, image pixels, image count), 422 wrong
JSON shape, 501 no OCR pipeline, 503 queue full (Retry-After), 504 past the per-request
timeout, 500 inference failed for that request.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any, Awaitable, Callable, Protocol, Sequence

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from textrec.serving import protocol
from textrec.serving.batcher import Batcher, BatchFn, QueueFull
from textrec.serving.metrics import Metrics
from textrec.serving.protocol import ApiError

Handler = Callable[[Request], Awaitable[Any]]


class OcrPipeline(Protocol):
  """What /ocr serves: BGR uint8 images -> one JSON-able dict per image (rec_texts,
  rec_scores, rec_polys, ...), as PaddleX's OCR pipeline results."""

  def predict(self, images: Sequence[np.ndarray], **params) -> Sequence[dict[str, Any]]: ...


# /ocr's optional per-request settings (PaddleX's serving names) -> the pipeline's.
OCR_PARAMS = {
    "useDocOrientationClassify": "use_doc_orientation_classify",
    "useDocUnwarping": "use_doc_unwarping",
    "useTextlineOrientation": "use_textline_orientation",
    "textDetLimitSideLen": "text_det_limit_side_len",
    "textDetLimitType": "text_det_limit_type",
    "textDetMaxSideLimit": "text_det_max_side_limit",
    "textDetThresh": "text_det_thresh",
    "textDetBoxThresh": "text_det_box_thresh",
    "textDetUnclipRatio": "text_det_unclip_ratio",
    "textRecScoreThresh": "text_rec_score_thresh",
}


@dataclasses.dataclass(frozen=True)
class Limits:
  """What a server takes (config.serve's fields of the same names)."""
  max_batch: int = 32
  max_delay_ms: float = 5.0
  max_queue: int = 256
  max_image_pixels: int = 16_000_000
  max_body_bytes: int = 8_000_000
  timeout_s: float = 30.0


class _Service:
  """The endpoints' handlers over one batcher, with their metrics and request counts."""

  def __init__(self, batch_fn: BatchFn, limits: Limits, pipeline: OcrPipeline | None,
               info: dict[str, Any] | None):
    self.limits, self.pipeline, self.info = limits, pipeline, dict(info or {})
    self.batcher = Batcher(batch_fn, limits.max_batch, limits.max_delay_ms / 1e3,
                           limits.max_queue)
    self.metrics = Metrics(self.batcher)
    self.batcher.on_batch = self.metrics.on_batch
    self.counts = {"accepted": 0, "answered": 0}

  def endpoint(self, name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """`handler`'s result as a success envelope; its errors, the timeout and anything
    unexpected as one-line error answers, counted in the metrics."""
    async def wrapped(request: Request) -> Response:
      self.counts["accepted"] += 1
      self.metrics.requests.labels(name).inc()
      t0 = time.perf_counter()
      try:
        result = await asyncio.wait_for(handler(request), self.limits.timeout_s)
        resp = protocol.answer(200, "Success", result)
      except asyncio.TimeoutError:
        self.metrics.errors.labels(name, "timeout").inc()
        resp = protocol.answer(504, f"not answered within {self.limits.timeout_s:g} s "
                                    "(serve.timeout_s)")
      except ApiError as e:
        self.metrics.errors.labels(name, protocol.KIND.get(e.status, str(e.status))).inc()
        resp = protocol.answer(e.status, e.message, headers=e.headers)
      except Exception as e:  # pylint: disable=broad-except  (the server keeps serving)
        self.metrics.errors.labels(name, "internal").inc()
        resp = protocol.answer(500, f"internal error: {type(e).__name__}: {e}")
      self.metrics.latency.labels(name).observe(time.perf_counter() - t0)
      self.counts["answered"] += 1
      return resp
    return wrapped

  async def _recognize(self, images: list[np.ndarray]) -> list[tuple[str, float]]:
    try:
      return await self.batcher.submit(images)  # cancelled past the timeout: withdrawn
    except QueueFull as e:
      raise ApiError(503, f"server busy: {e}; retry later", {"Retry-After": "1"}) from None
    except Exception as e:  # pylint: disable=broad-except
      raise ApiError(500, f"inference failed: {type(e).__name__}: {e}") from None

  def _named_images(self, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """/text-recognition's images with the field names errors cite."""
    protocol.check_fields(body, ("image", "images"), "/text-recognition")
    if ("image" in body) == ("images" in body):
      raise ApiError(422, 'give exactly one of "image" (base64) or "images" (list of base64)')
    if "image" in body:
      return [("image", body["image"])]
    images = body["images"]
    if not isinstance(images, list):
      raise ApiError(422, f"images must be a list of base64 strings, got "
                          f"{type(images).__name__}")
    if not images:
      raise ApiError(422, "images is empty")
    if len(images) > self.limits.max_queue:
      raise ApiError(413, f"{len(images)} images exceed the limit of {self.limits.max_queue} "
                          "per request (serve.max_queue)")
    return [(f"images[{i}]", b) for i, b in enumerate(images)]

  async def text_recognition(self, request: Request) -> dict[str, Any]:
    body = await protocol.read_json(request, self.limits.max_body_bytes)
    named = self._named_images(body)
    px = self.limits.max_image_pixels
    images = await run_in_threadpool(
        lambda: [protocol.decode_b64_image(b, n, px) for n, b in named])
    texts = await self._recognize(images)
    self.metrics.images.inc(len(images))
    return {"texts": [{"rec_text": t, "rec_score": float(s)} for t, s in texts]}

  async def ocr(self, request: Request) -> dict[str, Any]:
    if self.pipeline is None:
      raise ApiError(501, "the OCR pipeline (text detection + recognition) is not available "
                          "on this server: start it with --config=configs/ocr.py, or "
                          "recognise cropped text lines with /text-recognition")
    body = await protocol.read_json(request, self.limits.max_body_bytes)
    protocol.check_fields(body, ("file", "fileType", *OCR_PARAMS), "/ocr")
    if "file" not in body:
      raise ApiError(422, 'missing field "file" (base64 image)')
    if body.get("fileType", 1) != 1:
      raise ApiError(422, f"fileType must be 1 (image); got {body['fileType']!r} (PDF input "
                          "is not supported)")
    img = await run_in_threadpool(protocol.decode_b64_image, body["file"], "file",
                                  self.limits.max_image_pixels)
    params = {OCR_PARAMS[k]: v for k, v in body.items() if k in OCR_PARAMS and v is not None}
    try:
      [res] = await run_in_threadpool(lambda: self.pipeline.predict([img], **params))
    except (ValueError, TypeError) as e:  # a setting out of range (UsageError is a ValueError)
      if not params:
        raise ApiError(500, f"OCR failed: {type(e).__name__}: {e}") from None
      raise ApiError(422, str(e)) from None
    except Exception as e:  # pylint: disable=broad-except
      raise ApiError(500, f"OCR failed: {type(e).__name__}: {e}") from None
    h, w = img.shape[:2]
    return {"ocrResults": [{"prunedResult": protocol.jsonable(res)}],
            "dataInfo": {"type": "image", "width": w, "height": h}}

  async def health(self, request: Request) -> Response:
    del request
    if not self.batcher.running:
      return protocol.answer(503, "not ready")
    return protocol.answer(200, "Healthy", self.info)

  async def metrics_text(self, request: Request) -> Response:
    del request
    return Response(self.metrics.text(), media_type=self.metrics.content_type)

  @contextlib.asynccontextmanager
  async def lifespan(self, app):
    del app
    self.batcher.start()
    yield
    await self.batcher.stop()


async def _http_error(request: Request, exc: Exception) -> Response:
  del request
  return protocol.answer(getattr(exc, "status_code", 500), str(getattr(exc, "detail", exc)),
                         headers=getattr(exc, "headers", None))


def create_app(batch_fn: BatchFn, limits: Limits = Limits(), pipeline: OcrPipeline | None = None,
               info: dict[str, Any] | None = None) -> Starlette:
  """The app. batch_fn: BGR images -> [(text, score)] (TextRecognizer.recognize); pipeline:
  the OCR pipeline /ocr serves (None: 501); info: shown by /health.

  `app.state.counts` holds "accepted" and "answered" request counts (equal after a drain).
  """
  s = _Service(batch_fn, limits, pipeline, info)
  app = Starlette(routes=[
      Route("/text-recognition", s.endpoint("text-recognition", s.text_recognition),
            methods=["POST"]),
      Route("/ocr", s.endpoint("ocr", s.ocr), methods=["POST"]),
      Route("/health", s.health, methods=["GET"]),
      Route("/metrics", s.metrics_text, methods=["GET"]),
  ], lifespan=s.lifespan, exception_handlers={HTTPException: _http_error})
  app.state.counts = s.counts
  app.state.batcher = s.batcher
  return app
