"""Recognizers on JAX: weights loaded into the registered flax model (deploy form), run as a
probs_fn (textrec.inference.predictor's contract) compiled once per input shape."""
from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np

from textrec.charset import Charset
from textrec.inference import preprocess
from textrec.models import recognizer, registry, zoo
from textrec.runtime import programs
from textrec.weights import loader


class FlaxForward(programs.FlaxForward):
  """A flax recognizer as a probs_fn: jitted apply + softmax over classes, compiled per
  (batch, width) and kept (textrec.runtime.programs: in memory and on disk)."""

  def __init__(self, module, variables: dict[str, Any]):
    self.module = module

    def probs(variables, x):
      return recognizer.probs(module.apply(variables, x, train=False))

    super().__init__(probs, variables, tag=f"rec-probs:{module!r}")

  def __call__(self, x_nhwc: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x_nhwc, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != preprocess.HEIGHT or x.shape[3] != 3:
      raise ValueError(f"expected f32[B, {preprocess.HEIGHT}, W, 3]; got {x.shape}")
    return super().__call__(x)


def flax_module(name: str, num_classes: int, deploy: bool):
  """The registered model, without its training-only branches where it has a switch."""
  ctor = registry.get_model(name)
  kw = dict(num_classes=num_classes, deploy=deploy)
  if "with_nrtr" in inspect.signature(ctor).parameters:
    kw["with_nrtr"] = False
  return ctor(**kw)


def load(name: str, model_dir: str | os.PathLike | None, dict_path: str | None = None,
         prefix: str | None = None) -> tuple[FlaxForward, Charset, str]:
  """-> (probs_fn, charset, description) of registered model `name` with the weights
  `model_dir` names (textrec.weights.loader), always in the fused (deploy) form."""
  w = loader.load_weights(name, model_dir, dict_path, prefix=prefix)
  variables, deploy = w.variables, w.deploy
  if not deploy:  # inference always runs the fused form (same outputs, faster)
    variables, deploy = zoo.to_deploy(name, variables), True
  return FlaxForward(flax_module(name, w.num_classes, deploy), variables), w.charset, w.source
