"""The detector's and the orientation classifier's networks as plain functions on NHWC numpy
batches, run by JAX (jitted, compiled once per input shape) or by onnxruntime / OpenVINO on a textrec
export of them (`--config=configs/ocr.py --config.mode=export`) or on the official ONNX, so
the pipeline can run without JAX (textrec.inference.runtimes: the backends).

  det: x f32[B, H, W, 3] -> text probability map f32[B, H, W]
  cls: x f32[B, H, W, 3] (the model's input size) -> probabilities f32[B, classes]
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from textrec.errors import InputError, UsageError
from textrec.formats import inference_yml, official_files
from textrec.inference import auto_backend, runtimes
from textrec.models import registry
from textrec.runtime import programs

Forward = Callable[[np.ndarray], np.ndarray]


def model_fn(name: str, kind: str) -> Callable:
  """(variables, x NHWC) -> the kind's output (module doc), for registered model `name`."""
  module = registry.get_model(name, kind=kind)(deploy=True)
  if kind == "det":
    return lambda v, x: module.apply(v, x, train=False)["maps"][..., 0]
  return lambda v, x: module.apply(v, x, train=False)


class OnnxForward:
  """onnxruntime or OpenVINO on an exported inference.onnx (input NCHW; det output
  [B, 1, H, W]; a cls export's input has its model's fixed h x w, checked here)."""

  def __init__(self, path: str, kind: str, backend: str = "onnxruntime",
               precision: str = "f32"):
    self.run = runtimes.runner(path, backend, precision)
    self.backend, self.precision = self.run.backend, self.run.precision
    # (h, w) when both are fixed in the graph, else None (det: any multiple of 32)
    hw = tuple(self.run.input_shape[2:4])
    self.input_hw = hw if all(isinstance(d, int) for d in hw) else None
    self.path = path
    self.kind = kind
    self.num_compiled = 0

  def __call__(self, x: np.ndarray) -> np.ndarray:
    if self.input_hw is not None and tuple(np.shape(x)[1:3]) != self.input_hw:
      raise InputError(f"{self.path}: takes inputs [B, {self.input_hw[0]}, "
                       f"{self.input_hw[1]}, 3]; got {tuple(np.shape(x))}")
    nchw = np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2))
    y = self.run(nchw)
    return y[:, 0] if self.kind == "det" else y


def backend_of(fwd) -> tuple[str, str]:
  """(backend, precision) a forward runs on (JAX's FlaxForward: jax, f32)."""
  return getattr(fwd, "backend", "jax"), getattr(fwd, "precision", "f32")


def _jax_forward(name: str, kind: str, model_dir: str | os.PathLike | None):
  from textrec.weights import pipeline_weights  # pylint: disable=g-import-not-at-top  (JAX)

  variables, source = pipeline_weights.load_aux(name, kind, model_dir)
  return programs.FlaxForward(model_fn(name, kind), variables, tag=f"{name}:{kind}"), source


def _auto_input(kind: str, fwd: OnnxForward) -> np.ndarray:
  """A representative NHWC input for backend auto's timing: a 640 x 640 page (det), six
  crops at the classifier's size."""
  shape = (1, 640, 640, 3) if kind == "det" else (6, *(fwd.input_hw or (48, 192)), 3)
  return np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)


def _exported(name: str, kind: str, path: str, backend: str, precision: str) -> Forward:
  onnx_path = os.path.join(path, inference_yml.ONNX_FILE)
  if backend in runtimes.ONNX_RUNTIMES:
    return OnnxForward(onnx_path, kind, backend, precision)
  source = str(inference_yml.read(path).get("Global", {}).get("source") or "")
  if backend == "jax":
    if not source.startswith("official"):
      raise UsageError(f"{path} is an exported inference dir of {source or 'weights'} that JAX "
                       "cannot read; run it with backend onnxruntime or openvino")
    return _jax_forward(name, kind, None)[0]
  cands = [b for b in runtimes.ONNX_RUNTIMES if precision in runtimes.SUPPORTED[b]]
  first = OnnxForward(onnx_path, kind, cands[0], precision)
  makers = {b: (lambda b=b: first if b == cands[0] else OnnxForward(onnx_path, kind, b,
                                                                     precision))
            for b in cands}
  return auto_backend.choose(onnx_path, makers, _auto_input(kind, first),
                             f"{name} {kind} ({path})")[1]


def load_forward(name: str, kind: str, model_dir: str | os.PathLike | None = None,
                 backend: str = "auto", precision: str = "f32") -> tuple[Forward, str]:
  """-> (forward, where the weights came from) for registered model `name` of `kind`:
  model_dir None for the official weights, a Paddle inference directory, or a textrec export
  of the model. backend (textrec.inference.runtimes): onnxruntime / openvino run an export's
  ONNX or the official ONNX (model_dir None); jax any weights but an export (other than of
  the official weights); auto: for an export the faster of onnxruntime and openvino
  (auto_backend; no JAX), else jax.
  backend_of(forward) says which runs."""
  backend = runtimes.canonical(backend)
  precision = runtimes.check_precision(backend, precision)
  if model_dir and os.path.isdir(model_dir) and inference_yml.is_export(model_dir):
    path = os.fspath(model_dir)
    yml = inference_yml.read(path)
    inference_yml.check_kind(yml, kind, inference_yml.path_of(path))
    inference_yml.check_model_name(yml, name, inference_yml.path_of(path))
    return _exported(name, kind, path, backend, precision), f"exported:{path}"
  if backend in runtimes.ONNX_RUNTIMES:
    if model_dir:
      raise UsageError(f"backend {backend} runs an exported inference dir or the official ONNX;"
                       f" {os.fspath(model_dir)!r} is neither: export it or use backend jax")
    official_files.check_shipped(name)
    path = official_files.onnx_path(name)
    return OnnxForward(path, kind, backend, precision), f"official:{path}"
  runtimes.check_precision("jax", precision)
  return _jax_forward(name, kind, model_dir)
