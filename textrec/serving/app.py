"""The ASGI app (Starlette): PaddleX serving's JSON protocol (textrec.serving.protocol) over
textrec's recognizer and OCR pipeline.

  POST /text-recognition  {"image": b64} | {"images": [b64, ...]}
                          -> result.texts = [{"rec_text", "rec_score"}, ...] in order
  POST /ocr               PaddleX's OCR-pipeline serving protocol (textrec/serving/schemas.py):
                          {"file": b64 or URL, "fileType": 0 | 1 | null, settings...}
                          -> result = {"ocrResults": [{"prunedResult", "ocrImage",
                          "docPreprocessingImage", "inputImage"}], "dataInfo"}, one entry per
                          page (configs/ocr.py plugs in the OCR pipeline; 501 without one)
  GET  /health            200 when ready
  GET  /metrics           Prometheus text

Statuses: 400 undecodable input, 403 a URL whose host serve.allowed_url_hosts does not list,
413 too large (body, image pixels, image count), 422 wrong JSON shape or a setting the
pipeline refuses (one line naming the field), 501 no OCR pipeline, 503 queue full
(Retry-After), 504 past the per-request timeout, 500 inference failed for that request.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any, Awaitable, Callable, Protocol, Sequence

import numpy as np
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from textrec.errors import InputError
from textrec.inference import inputs
from textrec.serving import fetch, protocol, schemas
from textrec.serving import visualize as pictures_lib
from textrec.serving.batcher import Batcher, BatchFn, QueueFull
from textrec.serving.metrics import Metrics
from textrec.serving.protocol import ApiError

from textrec.inference import pdf as pdf_lib

Handler = Callable[[Request], Awaitable[Any]]


class OcrPipeline(Protocol):
  """What /ocr serves: BGR uint8 images -> one result per image, in order: an OCRResult
  (textrec.pipelines; its `.json["res"]`, `.input_img` and `.doc_preprocessor_res` are read)
  or a JSON-able dict (rec_texts, rec_scores, rec_polys, ...) as PaddleX's `res`."""

  def predict(self, images: Sequence[np.ndarray], **params) -> Sequence[Any]: ...


PRUNED_KEYS = ("input_path", "page_index")  # dropped from prunedResult (PaddleX's prune_result)


@dataclasses.dataclass(frozen=True)
class Limits:
  """What a server takes (config.serve's fields of the same names)."""
  max_batch: int = 32
  max_delay_ms: float = 5.0
  max_queue: int = 256
  max_image_pixels: int = 16_000_000
  max_pdf_pages: int | None = 10  # None: any number
  max_pdf_page_pixels: int = 16_000_000
  max_body_bytes: int = 8_000_000
  timeout_s: float = 30.0
  visualize: bool = True                   # /ocr pictures when a request's visualize is null
  allowed_url_hosts: tuple[str, ...] = ()  # hosts a `file` URL may name (fetch.parse_hosts)
  url_timeout_s: float = 5.0               # fetching a `file` URL


def prune(x: Any) -> Any:
  """PaddleX's prunedResult: the result without input_path / page_index, at any depth."""
  if isinstance(x, dict):
    return {k: prune(v) for k, v in x.items() if k not in PRUNED_KEYS}
  if isinstance(x, (list, tuple)):
    return [prune(v) for v in x]
  return x


def _unpack(res: Any, page: np.ndarray) -> tuple[dict[str, Any], np.ndarray, Any]:
  """A pipeline result -> (PaddleX's `res` dict, the image detection saw, the
  doc_preprocessor_res with its output_img or None)."""
  if isinstance(res, dict):
    return res, page, None
  det_img = res.input_img if getattr(res, "input_img", None) is not None else page
  return res.json["res"], det_img, getattr(res, "doc_preprocessor_res", None)


def _sniff(data: bytes) -> str | None:
  """fileType null: "pdf" / "image" by the bytes' signature, or None."""
  if data.startswith(b"%PDF-"):
    return "pdf"
  return "image" if inputs.header_pixels(data) is not None else None


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

  def _load_file(self, req: schemas.OCRInferRequest
                 ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """`file` -> its pages (BGR uint8) and PaddleX's dataInfo. fileType 0 / 1 is PDF / image;
    null: a URL's extension (PaddleX's rule), else the bytes' signature (PaddleX answers 422
    there). PDF pages: textrec.inference.pdf.render_pdf within serve.max_pdf_pages and
    serve.max_pdf_page_pixels (413 past them, before rendering; 422 a broken or encrypted
    PDF). PaddleX renders the first max_num_input_imgs pages and drops the rest silently;
    textrec refuses such a PDF, so no page goes unread without the client knowing."""
    lim = self.limits
    kind = {0: "pdf", 1: "image"}.get(req.fileType)
    if fetch.is_url(req.file):
      data = fetch.fetch(req.file, lim.allowed_url_hosts, lim.max_body_bytes, lim.url_timeout_s)
      kind = kind or fetch.kind_from_url(req.file)
    else:
      data = protocol.b64_bytes(req.file, "file")
    kind = kind or _sniff(data)
    if kind is None:
      raise ApiError(422, "fileType is null and file is neither a PDF nor a known image "
                          "format; send fileType 0 (PDF) or 1 (image)")
    if kind == "pdf":
      try:
        pages = pdf_lib.render_pdf(data, "file", max_pages=lim.max_pdf_pages,
                                   max_page_pixels=lim.max_pdf_page_pixels)
      except InputError as e:
        raise ApiError(getattr(e, "status", 422), str(e)) from None
      return pages, {"type": "pdf", "numPages": len(pages),
                     "pages": [{"width": p.shape[1], "height": p.shape[0]} for p in pages]}
    img = protocol.decode_image_bytes(data, "file", lim.max_image_pixels)
    return [img], {"type": "image", "width": img.shape[1], "height": img.shape[0]}

  async def ocr(self, request: Request) -> dict[str, Any]:
    if self.pipeline is None:
      raise ApiError(501, "the OCR pipeline (text detection + recognition) is not available "
                          "on this server: start it with --config=configs/ocr.py, or "
                          "recognise cropped text lines with /text-recognition")
    body = await protocol.read_json(request, self.limits.max_body_bytes)
    try:
      req = schemas.OCRInferRequest.model_validate(body)
    except ValidationError as e:
      raise ApiError(422, schemas.error_line(e)) from None
    if req.useDocUnwarping:
      raise ApiError(422, "useDocUnwarping: document unwarping (UVDoc) is not implemented in "
                          "textrec; omit it or send false")
    if req.returnWordBox:
      raise ApiError(422, "returnWordBox: per-character boxes (text_word, text_word_boxes) "
                          "are not implemented in textrec; omit it or send false")
    params = req.pipeline_params()
    pages, data_info = await run_in_threadpool(self._load_file, req)
    try:
      results = await run_in_threadpool(lambda: list(self.pipeline.predict(pages, **params)))
    except (ValueError, TypeError) as e:  # a setting out of range (UsageError is a ValueError)
      if not params:
        raise ApiError(500, f"OCR failed: {type(e).__name__}: {e}") from None
      raise ApiError(422, str(e)) from None
    except Exception as e:  # pylint: disable=broad-except
      raise ApiError(500, f"OCR failed: {type(e).__name__}: {e}") from None
    show = self.limits.visualize if req.visualize is None else req.visualize

    def entries() -> list[dict[str, Any]]:
      out = []
      for page, res in zip(pages, results):
        raw, det_img, doc = _unpack(res, page)
        entry = {"prunedResult": protocol.jsonable(prune(raw))}
        if show:
          entry.update(pictures_lib.pictures(page, det_img, entry["prunedResult"], doc))
        out.append(entry)
      return out

    result = schemas.OCRInferResult(ocrResults=await run_in_threadpool(entries),
                                    dataInfo=data_info)
    return result.jsonable()

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
