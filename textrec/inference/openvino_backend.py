"""OpenVINO on an ONNX file (the `openvino` extra): the exported inference.onnx.

OpenVINO reads the graph after onnxruntime's basic (portable, semantics-preserving) graph
rewrites when onnxruntime is installed: textrec's jax2onnx export wraps every NHWC op in
Transposes, which onnxruntime's optimiser cancels and OpenVINO's reader does not; with them
left in, OpenVINO ran the export of PP-OCRv4_mobile_rec 2.4x slower than onnxruntime
(scripts/bench_runtimes.py, column ov-ours). The rewritten file is kept in the program cache,
keyed by the source file's sha256.

The model is compiled once for the CPU with its dynamic dims (batch, width; the detector's
height too) kept dynamic: OpenVINO's CPU plugin picks kernels per input shape itself and
keeps them, and on the recognizers a model reshaped and compiled per shape ran no faster.
Precision is set explicitly: INFERENCE_PRECISION_HINT "f32" by default, since OpenVINO
otherwise runs bf16 on CPUs with AMX or AVX512-bf16; "bf16" on request.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator

import numpy as np

from textrec import files
from textrec.errors import MissingExtraError, UsageError
from textrec.runtime import programs

PRECISIONS = ("f32", "bf16")


def openvino_module():
  """The openvino module, imported without its telemetry.

  Importing openvino imports its model converter, which (unless the user opted out with
  openvino_telemetry's opt_in_out) sends an "import" event to Google Analytics from a
  process it forks. textrec contacts no host, and forking a process that runs JAX can
  deadlock it, so the converter is made to take its own fallback, the telemetry stub it
  uses when openvino_telemetry is not installed. A user's later `import openvino_telemetry`
  works as usual."""
  if "openvino" in sys.modules and sys.modules["openvino"] is not None:
    return sys.modules["openvino"]
  blocked = "openvino_telemetry" not in sys.modules
  if blocked:
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import -> ImportError
  try:
    import openvino  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtraError("backend openvino needs the openvino package: pip install "
                            "'textrec[openvino]'") from e
  finally:
    if blocked and sys.modules.get("openvino_telemetry", 0) is None:
      del sys.modules["openvino_telemetry"]
  return openvino


def version() -> str:
  return openvino_module().__version__


def _rewrite(src: str, dst: str) -> None:
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  opts = ort.SessionOptions()
  opts.log_severity_level = 3
  opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
  opts.optimized_model_filepath = dst
  ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def graph_to_read(onnx_path: str) -> Iterator[str]:
  """Yields the ONNX file OpenVINO reads for `onnx_path` (module doc): the cached rewrite,
  a temporary one when the program cache is off, or `onnx_path` itself without
  onnxruntime."""
  try:
    import onnxruntime  # pylint: disable=g-import-not-at-top,unused-import  # noqa: F401
  except ImportError:
    yield onnx_path
    return
  where = programs.cache_dir()
  if where is None:
    with tempfile.TemporaryDirectory() as tmp:
      dst = os.path.join(tmp, "model.onnx")
      _rewrite(onnx_path, dst)
      yield dst
    return
  dst = where / f"openvino-{files.sha256(onnx_path)[:24]}.onnx"
  if not dst.exists():
    with files.atomic_path(dst, suffix=".onnx") as tmp:
      _rewrite(onnx_path, tmp)
  yield str(dst)


class OpenVinoRunner:
  """x f32 (as the graph takes it) -> the graph's first output, on OpenVINO's CPU plugin.

  Thread-safe: each call runs its own infer request on the one compiled model."""

  backend = "openvino"

  def __init__(self, onnx_path: str, precision: str = "f32", device: str = "CPU"):
    if precision not in PRECISIONS:
      raise UsageError(f"precision {precision!r}: openvino runs {list(PRECISIONS)} here")
    ov = openvino_module()
    core = ov.Core()
    with graph_to_read(onnx_path) as path:
      model = core.read_model(path)
    self.path = onnx_path
    self.precision = precision
    shape = lambda ps: tuple(d.get_length() if d.is_static else None for d in ps)  # noqa: E731
    self.input_shape = shape(model.inputs[0].get_partial_shape())
    self.output_shape = shape(model.outputs[0].get_partial_shape())
    self.compiled = core.compile_model(model, device, {"INFERENCE_PRECISION_HINT": precision})
    self._local = threading.local()

  def __call__(self, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    req = getattr(self._local, "req", None)
    if req is None:  # one infer request per thread
      req = self._local.req = self.compiled.create_infer_request()
    req.infer({0: x})
    return np.array(req.get_output_tensor(0).data, copy=True)
