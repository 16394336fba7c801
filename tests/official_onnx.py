"""Shared by the tests against the official ONNX files (the `pretrained` extra, which the
test command installs with the dev extras): onnxruntime sessions on NHWC input and the official
pipeline's texts."""
from __future__ import annotations

from typing import Callable

import numpy as np


def session(path: str) -> Callable[[np.ndarray], np.ndarray]:
  """onnxruntime (CPU, 2 threads, not spinning) on `path`: x [B, H, W, C] (transposed to
  NCHW) -> its first output."""
  import onnxruntime as ort

  so = ort.SessionOptions()
  so.intra_op_num_threads = 2
  so.inter_op_num_threads = 1
  so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared CI cores
  sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
  name = sess.get_inputs()[0].name
  return lambda x: sess.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]


def paddlex_texts(run: Callable[[np.ndarray], np.ndarray], images: list[np.ndarray], charset,
                  batch_size: int = 6) -> list[str]:
  """The official pipeline's texts for BGR crops: `run` (e.g. `session`, onnxruntime on the
  official ONNX) on PaddleX's batches: `batch_size` crops sorted by aspect ratio, each batch
  resized to height 48 and padded to its widest (at least 320, at most 3200), greedy CTC."""
  import math  # pylint: disable=g-import-not-at-top

  from textrec.inference import postprocess, preprocess  # pylint: disable=g-import-not-at-top

  order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
  texts = [""] * len(images)
  for s in range(0, len(order), batch_size):
    idx = order[s:s + batch_size]
    ratio = max([320 / 48] + [images[i].shape[1] / images[i].shape[0] for i in idx])
    width = min(int(math.ceil(48 * ratio)), preprocess.MAX_WIDTH)
    probs = run(np.stack([preprocess.resize_norm(images[i], width) for i in idx]))
    for i, (t, _) in zip(idx, postprocess.ctc_greedy_decode(probs, charset)):
      texts[i] = t
  return texts
