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

import importlib
from typing import Callable, Dict

KINDS = ("rec", "det", "cls")
BUILTIN: Dict[str, Dict[str, str]] = {
    "rec": {"PP-OCRv4_mobile_rec": "textrec.models.recognizer",
            "PP-OCRv4_server_rec": "textrec.models.zoo",
            "ch_SVTRv2_rec": "textrec.models.zoo",
            "ch_RepSVTR_rec": "textrec.models.zoo",
            "tiny_rec": "textrec.models.tiny"},
    "det": {"PP-OCRv4_mobile_det": "textrec.models.detector"},
    "cls": {"ch_ppocr_mobile_v2.0_cls": "textrec.models.classifier"},
}
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


def get_model(name: str, kind: str = "rec") -> Callable:
  """The constructor registered for `name` of `kind`; KeyError naming the known names."""
  _check_kind(kind)
  if name not in _MODELS[kind] and name in BUILTIN[kind]:
    importlib.import_module(BUILTIN[kind][name])
  if name not in _MODELS[kind]:
    other = kind_of(name)
    hint = f" ({name!r} is a {other!r} model: pass kind={other!r})" if other else ""
    raise KeyError(f"unknown {kind} model {name!r}{hint}; known {kind} models: "
                   f"{model_names(kind)}")
  return _MODELS[kind][name]
