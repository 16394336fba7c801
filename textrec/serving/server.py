"""`--config.mode=serve`: loads the recognizer and serves it with uvicorn until SIGTERM/SIGINT.

On SIGTERM the server stops accepting connections, answers every request it has accepted,
prints how many it accepted and answered, and exits 0.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
import time

import numpy as np
from absl import logging as absl_logging

from textrec.errors import UsageError
from textrec.inference import onnx_backend, predictor
from textrec.pipelines import predict as predict_lib
from textrec.runtime import compile_cache, malloc, settings
from textrec.serving import app as app_lib
from textrec.serving import fetch
from textrec.serving import workers as workers_lib

BACKENDS = ("auto", "onnxruntime", "onnx", "openvino", "jax")  # onnx: onnxruntime


def limits_of(s) -> app_lib.Limits:
  """config.serve -> Limits; raises ValueError naming a bad value."""
  lim = app_lib.Limits(max_batch=int(s.max_batch), max_delay_ms=float(s.max_delay_ms),
                       max_queue=int(s.max_queue), max_image_pixels=int(s.max_image_pixels),
                       max_body_bytes=int(s.max_body_bytes), timeout_s=float(s.timeout_s),
                       max_pdf_pages=int(s.max_pdf_pages) or None,
                       max_pdf_page_pixels=int(s.max_pdf_page_pixels),
                       visualize=bool(s.visualize),
                       allowed_url_hosts=fetch.parse_hosts(s.allowed_url_hosts),
                       url_timeout_s=float(s.url_timeout_s))
  if int(s.max_pdf_pages) < 0:
    raise UsageError(f"serve.max_pdf_pages must be >= 0 (0: any number), got {s.max_pdf_pages}")
  for k in ("max_batch", "max_queue", "max_image_pixels", "max_pdf_page_pixels",
            "max_body_bytes", "timeout_s", "url_timeout_s"):
    if not getattr(lim, k) > 0:
      raise UsageError(f"serve.{k} must be > 0, got {getattr(lim, k)}")
  if lim.max_delay_ms < 0:
    raise UsageError(f"serve.max_delay_ms must be >= 0, got {lim.max_delay_ms}")
  if int(s.get("workers", 1)) < 1:
    raise UsageError(f"serve.workers must be >= 1, got {s.workers}")
  if float(s.get("malloc_trim_s", 0)) < 0:
    raise UsageError(f"serve.malloc_trim_s must be >= 0 (0: never), got {s.malloc_trim_s}")
  if int(s.get("malloc_arena_max", 0)) < 0:
    raise UsageError(f"serve.malloc_arena_max must be >= 0 (0: glibc's default), got "
                     f"{s.malloc_arena_max}")
  return lim


def load_recognizer(name: str, model_dir: str, backend: str, max_batch: int,
                    rotate_tall: float = 0.0, precision: str = "f32"
                    ) -> predictor.TextRecognizer:
  """The recognizer to serve. backend "onnxruntime" (= "onnx") / "openvino": an exported
  inference dir's ONNX (no JAX), or the official ONNX when model_dir is ""; "jax": anything
  create_model takes but an exported dir; "auto": for an exported dir the fastest of those
  that can run it (timed once per machine: textrec.inference.auto_backend), else jax.
  precision: f32 | bf16 (openvino)."""
  if backend not in BACKENDS:
    raise UsageError(f"serve.backend must be one of {BACKENDS}, got {backend!r}")
  kind = predictor.model_dir_kind(model_dir or None)
  if backend == "auto" and kind != "exported":
    backend = "jax"
  if backend in ("onnx", "onnxruntime", "openvino") and kind == "official":
    model_dir = onnx_backend.official_dir(name)
  elif backend in ("onnx", "onnxruntime", "openvino") and kind != "exported":
    raise UsageError(f"backend={backend} serves an exported inference dir; {model_dir!r} is a "
                     f"{kind} model: export it (--config.mode=export) or use backend=jax")
  elif backend == "jax" and kind == "exported":
    raise UsageError(f"{model_dir!r} is an exported inference dir: serve it with backend=onnx "
                     "(onnxruntime), openvino or auto")
  if backend == "jax":
    compile_cache.enable()
  # onnxruntime's threads sleep between ops instead of spinning: the event loop needs the
  # CPU too (scripts/load_test.py measures it).
  return predictor.create_model(name, model_dir=model_dir or None, batch_size=max_batch,
                                rotate_tall=rotate_tall,
                                session_config={"session.intra_op.allow_spinning": "0"},
                                backend=backend, precision=precision)


class ServedOCR:
  """An OCRPipeline as /ocr serves it: images -> their OCRResults (the app prunes them and
  draws the pictures); a failed image raises."""

  def __init__(self, pipe):
    self.pipe = pipe

  def predict(self, images, **params):
    out = []
    for res in self.pipe.predict(list(images), **params):
      if res.error is not None:
        raise ValueError(res.error)
      out.append(res)
    return out


def run(config) -> int:
  """Serves config.model.name as config.serve says; exit code 0 (a bad config or model raises
  textrec.errors' errors, which the CLI shows as one line). serve.workers > 1: that many
  processes on one port (textrec/serving/workers.py)."""
  absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax/JAX log loading at INFO
  s = config.serve
  limits = limits_of(s)
  malloc.limit_arenas(int(s.get("malloc_arena_max", 0)))  # before any thread pool starts
  if int(s.workers) > 1:
    return workers_lib.supervise(int(s.workers), s.host, int(s.port),
                                 functools.partial(_worker, config), config.model.name,
                                 drain_s=limits.timeout_s + 30)
  started, c = serve(config)
  print(f"serve: stopped; {c['accepted']} requests accepted, {c['answered']} answered",
        file=sys.stderr, flush=True)
  return 0 if started else 1


def _worker(config, sock, index: int, ready) -> dict[str, int]:
  """One of serve.workers' processes: serves `sock` until SIGTERM; its request counts."""
  absl_logging.set_verbosity(absl_logging.WARNING)
  settings.configure(**dict(config.get("runtime") or {}))  # as the CLI does in the parent
  started, counts = serve(config, sock, index, ready)
  if not started:
    raise RuntimeError(f"worker {index}: uvicorn did not start")
  return counts


def serve(config, sock=None, worker: int | None = None, ready=None) -> tuple[bool, dict]:
  """Loads the model and serves it until SIGTERM/SIGINT (on `sock` if given, else
  serve.host:port); returns (whether it served, {"accepted", "answered"} request counts).
  worker: this process's index among serve.workers (shown by /health); ready(): called once
  serving."""
  s = config.serve
  limits = limits_of(s)
  t0 = time.perf_counter()
  rec = load_recognizer(config.model.name, s.model_dir, s.backend, limits.max_batch,
                        float(config.predict.rotate_tall), s.get("precision", "f32"))
  rec.recognize([np.full((48, 160, 3), 255, np.uint8)])  # loads / compiles before serving
  import cv2  # pylint: disable=g-import-not-at-top
  import uvicorn  # pylint: disable=g-import-not-at-top

  # errors only: a bad image is answered 400, not logged as a warning
  cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

  info = {"model": rec.model_name, "source": rec.source, **rec.model_settings}
  if worker is not None:
    info["worker"] = workers_lib.info(worker)
  pipeline = None
  if "ocr" in config:  # configs/ocr.py: /ocr runs the OCR pipeline on the same recognizer
    pipeline = ServedOCR(predict_lib.pipeline_from_config(
        config, recognizer=rec, backend=s.backend, precision=s.get("precision", "f32")))
    pipeline.predict([np.full((64, 256, 3), 255, np.uint8)])  # compiles before serving
    info["ocr"] = {"ocr_version": pipeline.pipe.ocr_version,
                   "det": pipeline.pipe.detector.source,
                   "cls": pipeline.pipe.orientation.source if pipeline.pipe.orientation else None}
  app = app_lib.create_app(rec.recognize, limits, pipeline=pipeline, info=info)
  server = uvicorn.Server(uvicorn.Config(
      app, host=s.host, port=int(s.port), log_level="warning", access_log=bool(s.access_log),
      timeout_graceful_shutdown=limits.timeout_s + 5))
  if not s.access_log:
    logging.getLogger("uvicorn.access").disabled = True
  load_s = time.perf_counter() - t0

  async def main() -> None:
    task = asyncio.ensure_future(server.serve(sockets=None if sock is None else [sock]))
    while not server.started and not task.done():
      await asyncio.sleep(0.02)
    if server.started and worker is not None:
      print(f"serve: worker {worker} ({rec.source}) ready (loaded in {load_s:.1f} s; pid "
            f"{os.getpid()})", file=sys.stderr, flush=True)
      ready()
    elif server.started:
      host, port = server.servers[0].sockets[0].getsockname()[:2]
      print(f"serve: {rec.model_name} ({rec.source}) on http://{host}:{port} "
            f"(loaded in {load_s:.1f} s; pid {os.getpid()})", file=sys.stderr, flush=True)
    await task

  # uvicorn handles SIGTERM/SIGINT while serving and re-raises them after its graceful
  # shutdown; ignored then, so a drained server exits 0.
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  stop_trimming = malloc.start_trimming(float(s.get("malloc_trim_s", 0)))
  try:
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:  # uvloop
      runner.run(main())
  finally:
    stop_trimming()
  return bool(server.started), dict(app.state.counts)
