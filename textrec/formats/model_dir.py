"""What kind of model a path holds, told apart by content, and the files each kind has.

Kinds: "official" (no path: the official weights), "paddle_infer" (a Paddle inference
directory, as PaddleX / PaddleOCR export and download: a program, inference.json for
PaddlePaddle 3 or inference.pdmodel for older ones, beside inference.pdiparams and
inference.yml), "exported" (a textrec export: inference.yml + inference.onnx), "pdparams" (a
PaddleOCR checkpoint file) and "orbax" (a textrec training run or checkpoint).
"""
from __future__ import annotations

import os

from textrec import files
from textrec.errors import WeightsError
from textrec.formats import inference_yml

PROGRAM_FILES = ("inference.json", "inference.pdmodel")
PARAMS_FILE = "inference.pdiparams"

KINDS_HELP = (
    "Paddle inference dir: inference.json (PaddlePaddle 3) or inference.pdmodel (legacy) + "
    "inference.pdiparams (+ inference.yml); textrec export: inference.yml + inference.onnx; "
    "textrec training run or checkpoint: best_model/ or checkpoints/ (Orbax); PaddleOCR "
    "checkpoint: a .pdparams file (or its path without the extension)")


def is_paddle_dir(path: str) -> bool:
  """A directory holding a Paddle program or its parameters."""
  return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f))
                                     for f in PROGRAM_FILES + (PARAMS_FILE,))


def program_file(path: str) -> str:
  """The program of Paddle inference directory `path` (PIR preferred when both are there)."""
  for f in PROGRAM_FILES:
    if os.path.isfile(os.path.join(path, f)):
      return os.path.join(path, f)
  raise FileNotFoundError(f"{path}: no inference.json (PaddlePaddle 3) or inference.pdmodel "
                          f"(legacy) program; found {sorted(os.listdir(path))}")


def is_checkpoint(path: str) -> bool:
  """A textrec run dir, an Orbax manager dir or one of its step dirs."""
  def has_steps(d: str) -> bool:
    return os.path.isdir(d) and any(s.isdigit() and os.path.isdir(os.path.join(d, s))
                                    for s in os.listdir(d))

  if any(has_steps(os.path.join(path, s)) for s in ("best_model", "checkpoints")):
    return True
  if any(os.path.isdir(os.path.join(path, s)) for s in ("variables", "state")):
    return True
  return has_steps(path)


def _pdparams_in(path: str, found: list[str]) -> str | None:
  """The .pdparams file a PaddleOCR training output dir means, if it holds any."""
  pdparams = [f for f in found if f.endswith(".pdparams")]
  if not pdparams:
    return None
  if len(pdparams) == 1 or "best_accuracy.pdparams" in pdparams:
    pick = pdparams[0] if len(pdparams) == 1 else "best_accuracy.pdparams"
    return os.path.join(path, pick)
  raise WeightsError(f"model_dir {path!r} holds several .pdparams files ({', '.join(pdparams)}) "
                     "and no best_accuracy.pdparams; pass the file to use")


def resolve(path: str | os.PathLike | None) -> tuple[str, str]:
  """-> (kind, path): the kind (module doc) and the path of what will be read (a .pdparams
  inside a training output dir, the directory of a program file). `~` is expanded. Raises
  one clear error naming what was found and what each kind needs."""
  if path is None or os.fspath(path) == "":
    return "official", ""
  path = files.user_path(path)
  if not os.path.exists(path):
    if os.path.isfile(path + ".pdparams"):  # PaddleOCR's pretrained_model convention
      return "pdparams", path + ".pdparams"
    raise FileNotFoundError(f"model_dir {path!r} does not exist")
  if os.path.isfile(path):
    if path.endswith(".pdparams"):
      return "pdparams", path
    if os.path.basename(path) in PROGRAM_FILES + (PARAMS_FILE,):
      return "paddle_infer", os.path.dirname(os.path.abspath(path))
    raise WeightsError(f"model_dir {path!r} is a file textrec does not read; it reads a "
                       f"directory or a file of these kinds: {KINDS_HELP}")
  if is_paddle_dir(path):
    return "paddle_infer", path
  if inference_yml.is_export(path):
    return "exported", path
  if is_checkpoint(path):
    return "orbax", path
  found = sorted(os.listdir(path))
  pdparams = _pdparams_in(path, found)
  if pdparams:
    return "pdparams", pdparams
  shown = ", ".join(f + ("/" if os.path.isdir(os.path.join(path, f)) else "")
                    for f in found[:12]) + (" ..." if len(found) > 12 else "")
  raise WeightsError(f"model_dir {path!r} is not a model directory textrec reads (found: "
                     f"{shown or 'nothing, it is empty'}). Each kind needs: {KINDS_HELP}")
