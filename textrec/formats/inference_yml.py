"""inference.yml, the file beside every inference model: PaddleX's and PaddleOCR's (written by
their exporters) and textrec's own (written by export, a superset of PaddleX's fields).

Fields read here: `Global.model_name`; `PostProcess.name` (CTCLabelDecode for recognizers,
DBPostProcess for text detectors, ClsPostProcess for orientation classifiers) and
`PostProcess.character_dict`; textrec's exports also hold `Global.files`, `Global.input` /
`Global.output` and `PreProcess.height` / `min_width` / `max_width` / `pad_widths`.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import yaml

from textrec import charset as charset_lib
from textrec import files
from textrec.errors import WeightsError

YML_FILE = "inference.yml"
ONNX_FILE = "inference.onnx"
# PostProcess.name -> the kind of model ("rec", "det", "cls"; textrec.models.registry kinds)
KIND_OF_POSTPROCESS = {"CTCLabelDecode": "rec", "DBPostProcess": "det",
                       "ClsPostProcess": "cls", "Topk": "cls"}
# What each kind of model is, and where the OCR pipeline takes its directory.
KINDS = {"rec": ("a text recognizer", "rec_model_dir"),
         "det": ("a text-detection model", "det_model_dir"),
         "cls": ("a text-line orientation classifier", "cls_model_dir")}


def path_of(path: str | os.PathLike) -> str:
  """`<dir>/inference.yml` for a directory, else the path itself."""
  path = os.fspath(path)
  return os.path.join(path, YML_FILE) if os.path.isdir(path) else path


def read(path: str | os.PathLike) -> dict:
  """Parses `<dir>/inference.yml` (or the file itself); FileNotFoundError when absent,
  WeightsError naming the file and line when it is not a YAML mapping."""
  yml = path_of(path)
  if not os.path.isfile(yml):
    raise FileNotFoundError(f"{yml} not found: not an exported inference dir "
                            "(write one with textrec's export)")
  try:
    with open(yml, encoding="utf-8") as f:
      cfg = yaml.safe_load(f)
  except yaml.YAMLError as e:
    mark = getattr(e, "problem_mark", None)
    line = f" line {mark.line + 1}" if mark is not None else ""
    raise WeightsError(f"{yml}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
  if not isinstance(cfg, dict):
    raise WeightsError(f"{yml}: expected a mapping with Global/PreProcess/PostProcess")
  return cfg


def read_if_present(directory: str | os.PathLike) -> dict | None:
  """The directory's inference.yml parsed, or None when it has none."""
  yml = os.path.join(os.fspath(directory), YML_FILE)
  return read(yml) if os.path.isfile(yml) else None


def write(path: str | os.PathLike, cfg: Mapping[str, Any]) -> None:
  """Writes `cfg` as YAML (UTF-8, keys in order), atomically."""
  files.atomic_write(path, yaml.safe_dump(dict(cfg), allow_unicode=True, sort_keys=False,
                                          width=100))


def get(cfg: Mapping, dotted: str, where: str) -> Any:
  """cfg["A"]["B"] for "A.B"; WeightsError naming the missing key and the file."""
  node: Any = cfg
  for key in dotted.split("."):
    if not isinstance(node, dict) or key not in node:
      raise WeightsError(f"{where}: missing key {dotted!r}; re-export the model")
    node = node[key]
  return node


def model_name(cfg: Mapping | None) -> str | None:
  """Global.model_name, or None."""
  return ((cfg or {}).get("Global") or {}).get("model_name")


def model_kind(cfg: Mapping | None) -> str | None:
  """"rec" | "det" | "cls" from PostProcess.name, or None when the yml does not say."""
  return KIND_OF_POSTPROCESS.get(((cfg or {}).get("PostProcess") or {}).get("name"))


def wrong_kind(where: str, have: str, want: str, name: str | None = None) -> WeightsError:
  """The error for a model directory of kind `have` given where one of `want` belongs."""
  what, arg = KINDS[have]
  return WeightsError(f"{where}: {what}{f' ({name})' if name else ''}, not {KINDS[want][0]}; "
                      f"pass it as the OCR pipeline's {arg} (create_pipeline({arg}=...))")


def check_kind(cfg: Mapping | None, kind: str, where: str) -> None:
  """WeightsError when the yml says the model is of another kind than `kind`."""
  have = model_kind(cfg)
  if have is not None and have != kind:
    raise wrong_kind(where, have, kind, model_name(cfg))


def check_model_name(cfg: Mapping | None, name: str, where: str) -> None:
  """Global.model_name must be `name`, or a language variant of it (e.g.
  `en_PP-OCRv4_mobile_rec` for PP-OCRv4_mobile_rec: same network, its own dictionary)."""
  have = model_name(cfg)
  if not have or have == name or re.fullmatch(r"[a-z]+(?:_[a-z]+)*_" + re.escape(name), have):
    return
  raise WeightsError(f"{where}: Global.model_name is {have!r} but {name!r} was requested; "
                     f"load it as {have!r} (create_model({have!r}, model_dir=...))")


def is_export(directory: str | os.PathLike) -> bool:
  """A textrec export: inference.yml + inference.onnx."""
  d = os.fspath(directory)
  return os.path.isfile(os.path.join(d, YML_FILE)) and os.path.isfile(os.path.join(d, ONNX_FILE))


def charset_of(chars: Any, num_classes: int, where: str) -> charset_lib.Charset:
  """PaddleX's `PostProcess.character_dict` -> Charset. PaddleX's CTCLabelDecode appends a
  space to the list; a list that already ends with the space (older textrec exports) is
  taken as is. The head's class count decides, and must fit."""
  if not isinstance(chars, list) or not all(isinstance(c, str) and c for c in chars):
    raise WeightsError(f"{where}: PostProcess.character_dict must be a list of characters")
  if num_classes == len(chars) + 2:
    return charset_lib.Charset(tuple(chars) + (" ",))
  if num_classes == len(chars) + 1:
    return charset_lib.Charset(tuple(chars))
  raise WeightsError(f"{where}: PostProcess.character_dict has {len(chars)} characters but the "
                     f"model's CTC head has {num_classes} classes (blank + characters + space "
                     f"= {len(chars) + 2} expected): the dictionary is not this model's")


def rec_config(name: str, cs: charset_lib.Charset, model_files: Mapping[str, str], *,
               height: int, min_width: int, max_width: int, pad_widths: Sequence[int],
               input_name: str, output_name: str, source: str = "") -> dict:
  """What a recognizer's inference.yml holds: PaddleX's fields (Global.model_name,
  PreProcess.transform_ops, PostProcess.name / character_dict, so stacks that read PaddleX's
  yml read ours) and ours beside them (files, input/output, pad widths, normalisation)."""
  return {
      "Global": {"model_name": name, "source": source, "files": dict(model_files),
                 "input": {"name": input_name, "dtype": "float32", "layout": "NCHW",
                           "shape": [-1, 3, height, -1]},
                 "output": {"name": output_name, "dtype": "float32",
                            "shape": [-1, -1, cs.num_classes],
                            "meaning": "per-frame class probabilities (softmax); T = W / 8 "
                                       "when W is a multiple of 8"}},
      "PreProcess": {
          "color": "BGR",
          "height": height,
          "resize": "keep aspect: width = min(ceil(height * w / h), max_width), "
                    "cv2.INTER_LINEAR; then zero-pad on the right to the pad width",
          "min_width": min_width,
          "max_width": max_width,
          "pad_widths": list(pad_widths),
          "pad_width_rule": "smallest pad width >= max(min_width, resized width); any width "
                            "works, these keep results batch-independent",
          "normalize": {"scale": 1.0 / 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                        "formula": "(x * scale - mean) / std", "pad_value": 0.0},
          # PaddleX's reading of the same rules (its TextRecPredictor builds from these).
          "transform_ops": [{"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                            {"RecResizeImg": {"image_shape": [3, height, 320]}}],
      },
      "PostProcess": {"name": "CTCLabelDecode", "blank_index": 0,
                      "character_dict": charset_lib.paddle_list(cs.chars)},
  }
