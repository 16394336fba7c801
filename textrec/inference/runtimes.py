"""Which runtime runs a network held as an ONNX file (an exported inference dir, or an official
ONNX): the names, their precisions, and one callable per (file, runtime, precision).

  backend    reads                                     precisions
  jax        every kind of weights (textrec's models)  f32
  onnxruntime  (alias "onnx") the ONNX file            f32
  openvino   the same ONNX file (the `openvino` extra)  f32 | bf16
  auto       an exported dir: the faster of onnxruntime and openvino, timed once per
             machine (textrec/inference/auto_backend.py); any other weights: jax

int8 is refused: OpenVINO runs int8 only on a model quantized beforehand (NNCF's
post-training quantization on calibration images), which textrec does not do.

  run = runner("inference.onnx", "openvino", "f32")
  y = run(x)  # x f32 as the graph takes it (NCHW) -> the graph's first output
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from textrec.errors import UsageError
from textrec.inference import openvino_backend

BACKENDS = ("auto", "jax", "onnxruntime", "openvino")
ALIASES = {"onnx": "onnxruntime"}
PRECISIONS = ("f32", "bf16", "int8")
SUPPORTED = {"jax": ("f32",), "onnxruntime": ("f32",), "openvino": ("f32", "bf16")}
ONNX_RUNTIMES = ("onnxruntime", "openvino")  # the runtimes that read an ONNX file


def canonical(backend: str, field: str = "backend") -> str:
  """`backend` with aliases resolved; raises UsageError naming `field` for an unknown one."""
  b = ALIASES.get(str(backend), str(backend))
  if b not in BACKENDS:
    raise UsageError(f"{field} must be one of {list(BACKENDS) + list(ALIASES)}; got {backend!r}")
  return b


def check_precision(backend: str, precision: str, field: str = "precision") -> str:
  """`precision` if `backend` (canonical; "auto": any that some runtime has) runs it, else
  UsageError."""
  p = str(precision)
  if p == "int8":
    raise UsageError(f"{field}=int8 needs a model quantized beforehand (NNCF), which textrec "
                     "does not do; use f32 or bf16 (openvino)")
  if p not in PRECISIONS:
    raise UsageError(f"{field} must be one of {list(PRECISIONS)}; got {precision!r}")
  if backend != "auto" and p not in SUPPORTED[backend]:
    have = [b for b, ps in SUPPORTED.items() if p in ps]
    raise UsageError(f"{field}={p}: backend {backend} runs {list(SUPPORTED[backend])} only; "
                     f"{p} runs on {have}")
  return p


def _providers() -> list[str]:
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  have = ort.get_available_providers()
  pref = ["CUDAExecutionProvider", "CPUExecutionProvider"]
  return [p for p in pref if p in have] or have


def session(onnx_path: str, providers: list[str] | None = None, intra_op_threads: int = 0,
            session_config: dict[str, str] | None = None):
  """An onnxruntime session on `onnx_path`: CUDA when available, else the CPU; onnxruntime's
  own log lines below errors off; `intra_op_threads` 0 = onnxruntime's default;
  `session_config`: its session config entries."""
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  opts = ort.SessionOptions()
  opts.log_severity_level = 3
  if intra_op_threads:
    opts.intra_op_num_threads = int(intra_op_threads)
  for k, v in (session_config or {}).items():
    opts.add_session_config_entry(k, v)
  return ort.InferenceSession(onnx_path, opts, providers=providers or _providers())


class OrtRunner:
  """onnxruntime on one ONNX file: x -> the first output."""

  backend = "onnxruntime"
  precision = "f32"

  def __init__(self, onnx_path: str, session_config: dict[str, str] | None = None,
               providers: list[str] | None = None, intra_op_threads: int = 0):
    self.session = session(onnx_path, providers, intra_op_threads, session_config)
    inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
    self.input_name = inp.name
    self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
    self.output_shape = tuple(d if isinstance(d, int) else None for d in out.shape)
    self.path = onnx_path

  def __call__(self, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return self.session.run(None, {self.input_name: x})[0]


def runner(onnx_path: str, backend: str, precision: str = "f32",
           session_config: dict[str, str] | None = None, providers: list[str] | None = None,
           intra_op_threads: int = 0) -> Callable[[np.ndarray], np.ndarray]:
  """A callable running `onnx_path` on `backend` ("onnxruntime" | "openvino") at `precision`;
  it has input_shape / output_shape (None for a dynamic dim), backend and precision.
  session_config, providers, intra_op_threads: onnxruntime's (onnx_backend.session)."""
  backend = canonical(backend)
  check_precision(backend, precision)
  if backend == "onnxruntime":
    return OrtRunner(onnx_path, session_config, providers, intra_op_threads)
  if backend == "openvino":
    return openvino_backend.OpenVinoRunner(onnx_path, precision)
  raise UsageError(f"backend {backend} does not run an ONNX file; use one of {ONNX_RUNTIMES}")
