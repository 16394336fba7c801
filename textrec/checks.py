"""Fast checks of a config before a mode runs: a user's mistake becomes one `UsageError`
line naming the flag and the fix, before seconds go into importing JAX or loading weights.
`expand_paths` first turns `~` in every path-valued key into the home directory.

Only what the user gave is checked (values, paths, extras); the modes still validate what
they read (label files, weights).
"""
from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any

from textrec.errors import UsageError
from textrec.formats import official_files
from textrec.inference import inputs, predict_files, predictor
from textrec.models import registry
from textrec.pipelines import ocr_versions
from textrec.runtime import settings

FORMATS = ("onnx", "saved_model", "all")
# Config keys that hold paths (a missing section, e.g. `ocr` outside configs/ocr.py, is
# skipped); predict.input may be a comma-separated list of them.
PATH_KEYS = ("output_dir", "dataset_dir", "data.dict_path", "train.pretrained",
             "evaluate.weight_path", "predict.input", "predict.model_dir", "predict.output_dir",
             "export.weight_path", "serve.model_dir", "ocr.det_model_dir", "ocr.cls_model_dir",
             "ocr.doc_orientation_model_dir", "ocr.doc_unwarping_model_dir")
_WEIGHTS_KINDS = ("a PaddleOCR .pdparams file, a Paddle inference directory or a textrec "
                  "checkpoint / training output directory")


def _at_least(flag: str, value: Any, low: float, strict: bool = False) -> None:
  if value < low or (strict and value == low):
    op = ">" if strict else ">="
    raise UsageError(f"--config.{flag}={value}: must be {op} {low}")


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> None:
  if value not in allowed:
    raise UsageError(f"--config.{flag}={value}: must be one of {', '.join(allowed)}")


def _existing(flag: str, path: str, what: str = "") -> None:
  if path and not os.path.exists(path) and not os.path.isfile(path + ".pdparams"):
    raise UsageError(f"--config.{flag}={path}: no such file or directory"
                     + (f"; {what}" if what else ""))


def check_ocr(o: Any) -> None:
  """The `ocr` section (configs/ocr.py); None settings are the ocr_version's."""
  _one_of("ocr.pipeline", o.pipeline, ("OCR",))
  _one_of("ocr.ocr_version", o.ocr_version, tuple(ocr_versions.VERSIONS))
  _one_of("ocr.text_rec_padding", o.text_rec_padding, predictor.PADDINGS)
  if o.text_det_limit_type is not None:
    _one_of("ocr.text_det_limit_type", o.text_det_limit_type, ("max", "min", "resize_long"))
  for flag in ("text_det_limit_side_len", "text_det_max_side_limit"):
    if o[flag] is not None:
      _at_least(f"ocr.{flag}", o[flag], 32)
  for flag in ("text_det_thresh", "text_det_box_thresh", "text_rec_score_thresh",
               "textline_orientation_thresh"):
    v = o[flag]
    if v is not None and not 0.0 <= v <= 1.0:
      raise UsageError(f"--config.ocr.{flag}={v}: must be in [0, 1]")
  if o.text_det_unclip_ratio is not None:
    _at_least("ocr.text_det_unclip_ratio", o.text_det_unclip_ratio, 0, strict=True)
  if o.use_doc_unwarping:
    if not o.doc_unwarping_model_dir:
      raise UsageError("--config.ocr.use_doc_unwarping=True needs the UVDoc weights (no PyPI "
                       "package ships them): set --config.ocr.doc_unwarping_model_dir=DIR, or "
                       "use_doc_unwarping=False")
    raise UsageError(f"--config.ocr.doc_unwarping_model_dir={o.doc_unwarping_model_dir}: "
                     "document unwarping (UVDoc) is not implemented in textrec yet; set "
                     "--config.ocr.use_doc_unwarping=False")
  for flag in ("det_model_dir", "cls_model_dir", "doc_orientation_model_dir"):
    path = o[flag]
    if path and not os.path.isdir(path):
      raise UsageError(f"--config.ocr.{flag}={path}: no such directory (a Paddle inference "
                       "directory: inference.json or inference.pdmodel + inference.pdiparams)")


def has_split(dataset_dir: str, split: str) -> bool:
  return (os.path.isfile(os.path.join(dataset_dir, f"{split}.txt")) or
          bool(glob.glob(os.path.join(dataset_dir, f"{split}.array_record*"))))


def check_dataset_dir(dataset_dir: str, splits: tuple[str, ...]) -> None:
  """`dataset_dir` ("" = the demo dataset) exists and holds each split's label file."""
  if not dataset_dir:
    return
  layout = "PaddleX's layout: DIR/images/..., DIR/train.txt, DIR/val.txt"
  if not os.path.isdir(dataset_dir):
    raise UsageError(f"--config.dataset_dir={dataset_dir}: no such directory (expected "
                     f"{layout})")
  for split in splits:
    if not has_split(dataset_dir, split):
      raise UsageError(f"--config.dataset_dir={dataset_dir}: no {split}.txt there (expected "
                       f"{layout})")


def check_model(name: str, weights: str, weights_flag: str) -> None:
  """`name` is a registered recognizer and has official weights when `weights` ("" /
  "official") asks for them; else UsageError naming the flag that is wrong."""
  try:
    registry.check_name(name)
  except UsageError as e:
    raise UsageError(f"--config.model.name={name}: {e}") from None
  if weights in ("", "official"):
    official_files.check_shipped(name, weights_flag)


def check_extra(module: str, extra: str, mode: str) -> None:
  if importlib.util.find_spec(module) is None:
    raise UsageError(f"{mode} needs the '{extra}' extra ({module} is not installed): "
                     f".venv/bin/pip install -e '.[{extra}]'")


def check_predict_input(value: str) -> list[str]:
  """The input paths. A missing one is left to predict, which reports it as that item's
  error; UsageError when none exists, or when directories alone hold no image."""
  if not value:
    raise UsageError("--config.predict.input=PATH is required (an image, a directory, or "
                     "a comma-separated list of them)")
  paths = predict_files.input_paths(value)
  there = [p for p in paths if os.path.exists(p)]
  if not there:
    missing = "" if len(paths) == 1 else f" ({', '.join(paths)})"
    raise UsageError(f"--config.predict.input={value}: no such file or directory{missing}")
  if not all(os.path.isdir(p) for p in there):
    return paths  # a file named directly: predict reads it and says what is wrong
  n_other = 0
  for p in there:
    for d, _, files in os.walk(p):
      for f in files:
        if f.lower().endswith(inputs.IMAGE_EXTS) and not f.startswith("."):
          return paths
        n_other += 1
  raise UsageError(f"--config.predict.input={value}: no image files there ({n_other} other "
                   f"files; images end in {', '.join(inputs.IMAGE_EXTS[:5])}, ...)")


def expand_paths(config: Any) -> None:
  """`~` -> the home directory in every path-valued key (`PATH_KEYS`), in place; a
  comma-separated predict.input item by item."""
  for key in PATH_KEYS:
    *sections, leaf = key.split(".")
    node = config
    for sec in sections:
      node = node.get(sec) if hasattr(node, "get") else None
    if node is None or leaf not in node or not isinstance(node[leaf], str):
      continue
    value = node[leaf]
    if "~" not in value:
      continue
    if key == "predict.input":
      value = ",".join(predict_files.input_paths(value))
    node[leaf] = os.path.expanduser(value)


def check_config(config: Any) -> None:
  """Expands `~` in its paths (`expand_paths`), then raises UsageError for the first mistake
  in what `config.mode` uses."""
  expand_paths(config)
  mode = config.mode
  try:
    settings.configure(**dict(config.get("runtime") or {}))
  except ValueError as e:
    raise UsageError(f"--config.{e}") from None
  _one_of("model.dtype", config.model.dtype, ("float32", "bfloat16"))
  if os.path.isfile(config.output_dir):
    raise UsageError(f"--config.output_dir={config.output_dir}: is a file, not a directory")
  if mode == "predict":
    p = config.predict
    if os.path.isfile(predict_files.output_dir(config)):
      raise UsageError(f"predict's output directory {predict_files.output_dir(config)} is a file "
                       "(set --config.predict.output_dir=DIR)")
    check_predict_input(p.input)
    _at_least("predict.batch_size", p.batch_size, 1)
    _at_least("predict.rotate_tall", p.rotate_tall, 0)
    _existing("predict.model_dir", p.model_dir, _WEIGHTS_KINDS)
    check_model(config.model.name, p.model_dir, "--config.predict.model_dir")
    if "ocr" in config:
      check_ocr(config.ocr)
  elif mode == "evaluate":
    e = config.evaluate
    _at_least("evaluate.batch_size", e.batch_size, 1)
    _at_least("evaluate.rotate_tall", e.rotate_tall, 0)
    _existing("evaluate.weight_path", e.weight_path, _WEIGHTS_KINDS)
    _existing("data.dict_path", config.data.dict_path)
    check_dataset_dir(config.dataset_dir, (e.split,))
    check_model(config.model.name, e.weight_path, "--config.evaluate.weight_path")
  elif mode == "train":
    t, o = config.train, config.optim
    for flag, v in (("train.batch_size", t.batch_size), ("train.log_every", t.log_every),
                    ("train.save_every", t.save_every), ("train.keep_last", t.keep_last)):
      _at_least(flag, v, 1)
    for flag, v in (("train.steps", t.steps), ("train.eval_every", t.eval_every),
                    ("data.num_workers", config.data.num_workers)):
      _at_least(flag, v, 0)
    if not t.steps:
      _at_least("train.epochs", t.epochs, 1)
    _at_least("optim.lr", o.lr, 0, strict=True)
    _one_of("optim.name", o.name, ("adam", "adamw"))
    _one_of("train.untrained_nrtr", t.untrained_nrtr, ("drop", "train"))
    _existing("data.dict_path", config.data.dict_path)
    if t.pretrained not in ("", "official"):
      _existing("train.pretrained", t.pretrained, f"'official', '' (from scratch) or "
                f"{_WEIGHTS_KINDS}")
    check_dataset_dir(config.dataset_dir, ("train", "val"))
    check_model(config.model.name, t.pretrained or "scratch", "--config.train.pretrained")
  elif mode == "export":
    x = config.export
    _one_of("export.format", x.format, FORMATS)
    _existing("export.weight_path", x.weight_path, _WEIGHTS_KINDS)
    if x.format in ("onnx", "all"):
      check_extra("jax2onnx", "export", "export to ONNX")
    if x.format in ("saved_model", "all"):
      check_extra("tensorflow", "export", "export to a SavedModel")
    check_model(config.model.name, x.weight_path, "--config.export.weight_path")
  elif mode == "check_dataset":
    if config.dataset_dir and not os.path.isdir(config.dataset_dir):
      raise UsageError(f"--config.dataset_dir={config.dataset_dir}: no such directory")
