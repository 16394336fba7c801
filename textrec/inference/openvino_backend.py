"""OpenVINO on an ONNX file (the `openvino` extra): the exported inference.onnx, read as is.

The model is compiled once for the CPU with its dynamic dims (batch, width; the detector's
height too) kept dynamic: OpenVINO's CPU plugin picks kernels per input shape itself and
keeps them, and on the recognizers a model reshaped and compiled per shape ran no faster.
Precision is set explicitly: INFERENCE_PRECISION_HINT "f32" by default, since OpenVINO
otherwise runs bf16 on CPUs with AMX or AVX512-bf16; "bf16" on request.
"""
from __future__ import annotations

import threading

import numpy as np

from textrec.errors import MissingExtraError, UsageError

PRECISIONS = ("f32", "bf16")


def _openvino():
  try:
    import openvino  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtraError("backend openvino needs the openvino package: pip install "
                            "'textrec[openvino]'") from e
  return openvino


def version() -> str:
  return _openvino().__version__


class OpenVinoRunner:
  """x f32 (as the graph takes it) -> the graph's first output, on OpenVINO's CPU plugin.

  Thread-safe: each call runs its own infer request on the one compiled model."""

  backend = "openvino"

  def __init__(self, onnx_path: str, precision: str = "f32", device: str = "CPU"):
    if precision not in PRECISIONS:
      raise UsageError(f"precision {precision!r}: openvino runs {list(PRECISIONS)} here")
    ov = _openvino()
    core = ov.Core()
    model = core.read_model(onnx_path)
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
