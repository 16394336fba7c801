"""The detector's and the orientation classifier's networks as plain functions on NHWC numpy
batches, run by JAX (jitted, compiled once per input shape) or by onnxruntime on a textrec
export of them (`--config=configs/ocr.py --config.mode=export`), so the pipeline can run
without JAX.

  det: x f32[B, H, W, 3] -> text probability map f32[B, H, W]
  cls: x f32[B, H, W, 3] (the model's input size) -> probabilities f32[B, classes]
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from textrec.errors import InputError
from textrec.formats import inference_yml
from textrec.inference import onnx_backend
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
  """onnxruntime on an exported inference.onnx (input NCHW; det output [B, 1, H, W]; a cls
  export's input has its model's fixed h x w, checked here)."""

  def __init__(self, path: str, kind: str):
    self.session = onnx_backend.session(path)
    inp = self.session.get_inputs()[0]
    self.input = inp.name
    # (h, w) when both are fixed in the graph, else None (det: any multiple of 32)
    hw = tuple(inp.shape[2:4])
    self.input_hw = hw if all(isinstance(d, int) for d in hw) else None
    self.path = path
    self.kind = kind
    self.num_compiled = 0

  def __call__(self, x: np.ndarray) -> np.ndarray:
    if self.input_hw is not None and tuple(np.shape(x)[1:3]) != self.input_hw:
      raise InputError(f"{self.path}: takes inputs [B, {self.input_hw[0]}, "
                       f"{self.input_hw[1]}, 3]; got {tuple(np.shape(x))}")
    nchw = np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2))
    y = self.session.run(None, {self.input: nchw})[0]
    return y[:, 0] if self.kind == "det" else y


def load_forward(name: str, kind: str, model_dir: str | os.PathLike | None = None
                 ) -> tuple[Forward, str]:
  """-> (forward, where the weights came from) for registered model `name` of `kind`:
  model_dir None for the official weights, a Paddle inference directory, or a textrec export
  of the model (onnxruntime)."""
  if model_dir and os.path.isdir(model_dir) and inference_yml.is_export(model_dir):
    path = os.fspath(model_dir)
    yml = inference_yml.read(path)
    inference_yml.check_kind(yml, kind, inference_yml.path_of(path))
    inference_yml.check_model_name(yml, name, inference_yml.path_of(path))
    return (OnnxForward(os.path.join(path, inference_yml.ONNX_FILE), kind),
            f"exported:{path}")

  from textrec.weights import pipeline_weights  # pylint: disable=g-import-not-at-top  (JAX)

  variables, source = pipeline_weights.load_aux(name, kind, model_dir)

  return programs.FlaxForward(model_fn(name, kind), variables, tag=f"{name}:{kind}"), source
