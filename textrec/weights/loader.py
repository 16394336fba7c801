"""One place that turns "where the weights are" into flax variables, for predict, evaluate,
export and training (`train.pretrained`).

Sources: "" / None (the official weights), a PaddleOCR `.pdparams` file, an Orbax checkpoint
or training-run dir. (An exported inference dir is served by textrec.onnx_backend instead.)
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import numpy as np

from textrec.charset import Charset

INFERENCE_YML = "inference.yml"


@dataclasses.dataclass
class Weights:
  variables: dict[str, Any]   # {"params", "batch_stats"}
  charset: Charset | None     # None only for a non-strict .pdparams whose head fits no dict
  deploy: bool                # fused (re-parameterised) form
  source: str                 # human-readable origin, for logs and results
  num_classes: int


def source_kind(path: str | os.PathLike | None) -> str:
  """"official" | "exported" | "pdparams" | "orbax"; raises a clear error for anything else."""
  if path is None or os.fspath(path) == "":
    return "official"
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"model_dir {path!r} does not exist")
  if os.path.isfile(path):
    if path.endswith(".pdparams"):
      return "pdparams"
    raise ValueError(f"model_dir {path!r} is a file but not a PaddleOCR .pdparams file; pass "
                     "a checkpoint dir, an exported inference dir or a .pdparams file")
  if os.path.isfile(os.path.join(path, INFERENCE_YML)):
    return "exported"
  if not os.listdir(path):
    raise ValueError(f"model_dir {path!r} is empty: not a checkpoint or inference dir")
  return "orbax"


def default_charset(dict_path: str | None = None) -> Charset:
  """The dictionary file given, else PaddleOCR's ppocr_keys_v1 (+ space), which all four
  recognizers' published weights use, read from the official ONNX's metadata."""
  from textrec import charset as charset_lib  # pylint: disable=g-import-not-at-top

  if dict_path:
    return charset_lib.load_dict(dict_path)
  import onnx  # pylint: disable=g-import-not-at-top

  from textrec.weights import official, onnx_import  # pylint: disable=g-import-not-at-top

  path = official.official_onnx_path("PP-OCRv4_mobile_rec")
  return onnx_import.charset_from_onnx(onnx.load(path, load_external_data=False))


def is_deploy_state(state: Mapping[str, np.ndarray]) -> bool:
  """True for a fused PaddleOCR state_dict: PPLCNetV3 `reparam_conv`s or a fused RepSVTR
  (whose stem conv then has a bias and no BN)."""
  return (any(".reparam_conv." in k for k in state) or
          ("backbone.features.0.0.weight" in state and
           "backbone.features.0.0.bn.weight" not in state))


def is_deploy_variables(variables: Mapping[str, Any]) -> bool:
  """True when flax params hold fused `reparam_conv` layers (PPLCNetV3 deploy form)."""
  import jax  # pylint: disable=g-import-not-at-top

  paths = jax.tree_util.tree_flatten_with_path(variables.get("params", variables))[0]
  return any("reparam_conv" in jax.tree_util.keystr(p) for p, _ in paths)


def load_weights(name: str, path: str | os.PathLike | None = None,
                 dict_path: str | None = None, strict: bool = True) -> Weights:
  """Variables of registered model `name` from `path` (see the module docstring).

  strict=False (fine-tuning from a partial `.pdparams`) keeps what matches and leaves the
  rest to the caller; the class count then comes from the file's CTC head.
  """
  kind = source_kind(path)
  if kind == "official":
    from textrec.weights import official  # pylint: disable=g-import-not-at-top

    variables, cs = official.load_official(name)
    return Weights(variables, cs, True, f"official {name}", cs.num_classes)
  path = os.fspath(path)
  if kind == "exported":
    raise ValueError(f"{path} is an exported inference dir; it holds no trainable weights "
                     "(serve it with create_model(name, model_dir=...), or pass the training "
                     "checkpoint it came from)")
  if kind == "pdparams":
    return _load_pdparams(name, path, dict_path, strict)
  from textrec import checkpoint  # pylint: disable=g-import-not-at-top

  meta = checkpoint.read_meta(path)
  if meta.get("model", name) != name:
    raise ValueError(f"{path}: a checkpoint of {meta['model']!r}, not {name!r}; use that "
                     "model's config / create_model name")
  variables, cs = checkpoint.load_variables(path)
  deploy = bool(meta["deploy"]) if "deploy" in meta else is_deploy_variables(variables)
  return Weights(variables, cs, deploy, path, cs.num_classes)


def _load_pdparams(name: str, path: str, dict_path: str | None, strict: bool) -> Weights:
  from textrec.weights import paddle  # pylint: disable=g-import-not-at-top

  state = paddle.load_pdparams(path)
  bias = [v for k, v in state.items() if k.startswith("head.ctc_head.fc") and k.endswith("bias")]
  if not bias:
    raise ValueError(f"{path}: no head.ctc_head.fc bias; not a PaddleOCR recognition model?")
  num_classes = int(bias[-1].shape[0])
  try:
    cs: Charset | None = default_charset(dict_path)
  except (ModuleNotFoundError, FileNotFoundError):
    if strict or dict_path:
      raise
    cs = None
  if cs is not None and cs.num_classes != num_classes:
    if strict:
      raise ValueError(f"{path}: its CTC head has {num_classes} classes but the dictionary "
                       f"gives {cs.num_classes} (blank + {len(cs.chars)} chars); pass the "
                       "model's dictionary (dict_path / config.data.dict_path)")
    cs = None
  deploy = is_deploy_state(state)
  try:
    out = paddle.paddle_to_flax(state, model_name=name, num_classes=num_classes, deploy=deploy,
                                strict=strict)
  except ValueError as e:
    raise ValueError(f"{path}: not a {name} state_dict: {e}") from e
  variables = out if strict else out[0]
  return Weights(variables, cs, deploy, path, num_classes)
