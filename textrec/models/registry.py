"""Name -> constructor registries, so a config names its model (big_vision style).

Models come in kinds, each its own registry so that recognizer-only code paths (training,
export, evaluation) never meet a detector: "rec" (text recognizers, the default), "det"
(text detectors) and "cls" (orientation classifiers). Names are unique across kinds.

The built-in models are listed in `BUILTIN` with the module that defines them; a module is
imported (and registers its models with `@register_model`) the first time one of its models
is asked for, so listing the names needs neither JAX nor Flax. Models of other packages
register themselves with `@register_model` when their module is imported.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Callable, Dict

from textrec.errors import UnknownNameError

KINDS = ("rec", "det", "cls")
BUILTIN: Dict[str, Dict[str, str]] = {
    "rec": {"PP-OCRv4_mobile_rec": "textrec.models.recognizer",
            "PP-OCRv4_server_rec": "textrec.models.zoo",
            "PP-OCRv5_mobile_rec": "textrec.models.recognizer",
            "PP-OCRv5_server_rec": "textrec.models.zoo",
            "PP-OCRv6_small_rec": "textrec.models.ppocrv6",
            "PP-OCRv6_tiny_rec": "textrec.models.ppocrv6",
            "PP-OCRv6_medium_rec": "textrec.models.ppocrv6",
            "ch_SVTRv2_rec": "textrec.models.zoo",
            "ch_RepSVTR_rec": "textrec.models.zoo",
            "tiny_rec": "textrec.models.tiny"},
    "det": {n: "textrec.models.detector" for n in (
        "PP-OCRv4_mobile_det", "PP-OCRv5_mobile_det", "PP-OCRv6_small_det",
        "PP-OCRv6_tiny_det")},
    "cls": {"ch_ppocr_mobile_v2.0_cls": "textrec.models.classifier",
            "PP-LCNet_x1_0_textline_ori": "textrec.models.pplcnet",
            "PP-LCNet_x1_0_doc_ori": "textrec.models.pplcnet"},
}
# PaddleX's multilingual PP-OCRv5 recognizers `<language>_PP-OCRv5_mobile_rec`: the network of
# PP-OCRv5_mobile_rec, the CTC head sized by each language's dictionary (recognizer.py).
V5_MOBILE_LANGUAGES = ("arabic", "cyrillic", "devanagari", "el", "en", "eslav", "korean",
                       "latin", "ta", "te", "th")
BUILTIN["rec"].update({f"{lang}_PP-OCRv5_mobile_rec": "textrec.models.recognizer"
                       for lang in V5_MOBILE_LANGUAGES})
_MODELS: Dict[str, Dict[str, Callable]] = {k: {} for k in KINDS}


def _check_kind(kind: str) -> None:
  if kind not in _MODELS:
    raise ValueError(f"unknown model kind {kind!r}; kinds: {list(KINDS)}")


def register_model(name: str, kind: str = "rec") -> Callable[[Callable], Callable]:
  """Decorator: `@register_model("PP-OCRv4_mobile_rec")` on a function returning a module;
  `kind="det"` / `"cls"` for detectors / orientation classifiers."""
  _check_kind(kind)

  def wrap(fn: Callable) -> Callable:
    if any(name in reg for reg in _MODELS.values()):
      raise ValueError(f"model {name!r} registered twice")
    _MODELS[kind][name] = fn
    return fn

  return wrap


def model_names(kind: str = "rec") -> list[str]:
  """Names of `kind` (recognizers by default): built-in and registered."""
  _check_kind(kind)
  return sorted(set(BUILTIN[kind]) | set(_MODELS[kind]))


def kind_of(name: str) -> str | None:
  """The kind `name` is registered as, or None."""
  return next((k for k in KINDS if name in model_names(k)), None)


KIND_WORDS = {"rec": "a text recognizer", "det": "a text-detection model",
              "cls": "a text-line orientation classifier"}
_PLURAL = {"rec": "recognizers", "det": "text detectors", "cls": "orientation classifiers"}


def check_name(name: str, kind: str = "rec") -> None:
  """UnknownNameError (a KeyError too) unless `name` is a model of `kind`: it names the kind
  the name has, or the closest known name, and the known names."""
  _check_kind(kind)
  names = model_names(kind)
  if name in names:
    return
  known = f"known {_PLURAL[kind]}: {', '.join(names)}"
  other = kind_of(name)
  if other:
    raise UnknownNameError(f"model {name!r} is {KIND_WORDS[other]}, not "
                           f"{KIND_WORDS[kind]} (pass kind={other!r}, or use it as the OCR "
                           f"pipeline's {other}_model); {known}")
  close = (difflib.get_close_matches(name, names, n=1, cutoff=0.5)
           or [n for n in names if n.startswith(name)][:1])
  hint = f"did you mean {close[0]!r}? " if close else ""
  raise UnknownNameError(f"unknown model {name!r}; {hint}{known}")


def get_model(name: str, kind: str = "rec") -> Callable:
  """The constructor registered for `name` of `kind` (`check_name` says what is wrong)."""
  check_name(name, kind)
  if name not in _MODELS[kind]:
    importlib.import_module(BUILTIN[kind][name])
  return _MODELS[kind][name]
