"""One place that turns "where the weights are" into flax variables, for predict, evaluate,
export and training (`train.pretrained`).

Sources, told apart by content (textrec.formats.model_dir.resolve): "" / None (the
official weights), a Paddle inference directory (PaddleX / PaddleOCR exports and downloads:
textrec.weights.paddle_infer), a PaddleOCR `.pdparams` file (distillation checkpoints too:
the Student by default), an Orbax checkpoint or training-run dir. (A textrec export is served by textrec.inference.onnx_backend.)
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping

import jax
import numpy as np

from textrec.charset import Charset
from textrec.errors import WeightsError
from textrec.formats import checkpoint, model_dir
from textrec.weights import official, paddle, paddle_infer

@dataclasses.dataclass
class Weights:
  variables: dict[str, Any]   # {"params", "batch_stats"}
  charset: Charset | None     # None only for a non-strict .pdparams whose head fits no dict
  deploy: bool                # fused (re-parameterised) form
  source: str                 # human-readable origin, for logs and results
  num_classes: int
  notes: list[str] = dataclasses.field(default_factory=list)  # what the user should know


def is_deploy_state(state: Mapping[str, np.ndarray]) -> bool:
  """True for a fused PaddleOCR state_dict: PPLCNetV3 `reparam_conv`s or a fused RepSVTR
  (whose stem conv then has a bias and no BN)."""
  return (any(".reparam_conv." in k for k in state) or
          ("backbone.features.0.0.weight" in state and
           "backbone.features.0.0.bn.weight" not in state))


def is_deploy_variables(variables: Mapping[str, Any]) -> bool:
  """True when flax params hold fused `reparam_conv` layers (PPLCNetV3 deploy form)."""
  paths = jax.tree_util.tree_flatten_with_path(variables.get("params", variables))[0]
  return any("reparam_conv" in jax.tree_util.keystr(p) for p, _ in paths)


def load_weights(name: str, path: str | os.PathLike | None = None,
                 dict_path: str | None = None, strict: bool = True,
                 prefix: str | None = None) -> Weights:
  """Variables of registered model `name` from `path` (see the module docstring).

  strict=False (fine-tuning from a partial `.pdparams`) keeps what matches and leaves the
  rest to the caller; the class count then comes from the file's CTC head. `prefix`: which
  model of a PaddleOCR distillation checkpoint to load (default: "Student").
  """
  kind, path = model_dir.resolve(path)
  if kind == "official":
    variables, cs = official.load_official(name)
    return Weights(variables, cs, True, f"official {name}", cs.num_classes)
  if kind == "exported":
    raise WeightsError(f"{path} is a textrec export (ONNX); it holds no trainable weights "
                     "(serve it with create_model(name, model_dir=...), or pass the training "
                     "checkpoint it came from)")
  if kind == "paddle_infer":
    d = paddle_infer.load(path, name, dict_path)
    w = Weights(d.variables, d.charset, d.deploy, f"Paddle inference dir {path}",
                d.num_classes, d.notes)
    return _noted(w)
  if kind == "pdparams":
    return _noted(_load_pdparams(name, path, dict_path, strict, prefix))

  meta = checkpoint.read_meta(path)
  if meta.get("model", name) != name:
    raise WeightsError(f"{path}: a checkpoint of {meta['model']!r}, not {name!r}; use that "
                     "model's config / create_model name")
  variables, cs = checkpoint.load_variables(path)
  deploy = bool(meta["deploy"]) if "deploy" in meta else is_deploy_variables(variables)
  return Weights(variables, cs, deploy, path, cs.num_classes)


def _noted(w: Weights) -> Weights:
  for note in w.notes:
    logging.getLogger("textrec").warning("note: %s", note)
  return w


DISTILL_DEFAULT = "Student"
_MODEL_PARTS = ("backbone", "neck", "head", "transform")


def select_submodel(state: dict[str, np.ndarray], prefix: str | None, where: str
                    ) -> tuple[dict[str, np.ndarray], str | None]:
  """A PaddleOCR distillation checkpoint holds several models (`Student.backbone...`,
  `Teacher.backbone...`): -> (the state of model `prefix`, default Student, with its prefix
  stripped; the prefix used). A plain checkpoint comes back unchanged (prefix None)."""
  if any(k.split(".", 1)[0] in _MODEL_PARTS for k in state):
    if prefix:
      raise WeightsError(f"{where}: prefix {prefix!r} given but this is not a distillation "
                       "checkpoint (its keys start with backbone./head.)")
    return state, None
  prefixes = sorted({k.split(".", 1)[0] for k in state
                     if k.count(".") >= 2 and k.split(".")[1] in _MODEL_PARTS})
  if not prefixes:
    return state, None
  want = prefix or DISTILL_DEFAULT
  if want not in prefixes:
    if prefix is None and len(prefixes) == 1:
      want = prefixes[0]
    else:
      raise WeightsError(f"{where}: a distillation checkpoint with models {prefixes}; "
                       f"{want!r} is not one of them. Choose one with prefix= "
                       "(--config.model.weights_prefix=NAME)")
  cut = len(want) + 1
  return {k[cut:]: v for k, v in state.items() if k.startswith(want + ".")}, want


def _load_pdparams(name: str, path: str, dict_path: str | None, strict: bool,
                   prefix: str | None = None) -> Weights:
  notes = []
  state, used = select_submodel(paddle.load_pdparams(path), prefix, path)
  if used:
    notes.append(f"{path}: a distillation checkpoint; loading its {used!r} model")
  stem = path[:-len(".pdparams")]
  beside = [stem + ext for ext in (".pdopt", ".states") if os.path.isfile(stem + ext)]
  if beside:
    notes.append("ignored " + ", ".join(os.path.basename(b) for b in beside)
                 + " beside the .pdparams (optimizer state / training metrics; only the "
                 "weights are read)")
  bias = [v for k, v in state.items() if k.startswith("head.ctc_head.fc") and k.endswith("bias")]
  if not bias:
    raise WeightsError(f"{path}: no head.ctc_head.fc bias; not a PaddleOCR recognition model?")
  num_classes = int(bias[-1].shape[0])
  try:
    cs: Charset | None = official.default_charset(dict_path)
  except (ModuleNotFoundError, FileNotFoundError):
    if strict or dict_path:
      raise
    cs = None
  if cs is not None and cs.num_classes != num_classes:
    if strict:
      raise WeightsError(f"{path}: its CTC head has {num_classes} classes but the dictionary "
                       f"gives {cs.num_classes} (blank + {len(cs.chars)} chars); pass the "
                       "model's dictionary (dict_path / config.data.dict_path)")
    cs = None
  deploy = is_deploy_state(state)
  try:
    out = paddle.paddle_to_flax(state, model_name=name, num_classes=num_classes, deploy=deploy,
                                strict=strict)
  except ValueError as e:
    raise WeightsError(f"{path}: not a {name} state_dict: {e}") from e
  variables = out if strict else out[0]
  return Weights(variables, cs, deploy, path + (f" [{used}]" if used else ""), num_classes,
                 notes)
