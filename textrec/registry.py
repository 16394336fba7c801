"""Name -> constructor registries, so a config names its model (big_vision style).

Models come in kinds, each its own registry so that recognizer-only code paths (training,
export, evaluation) never meet a detector: "rec" (text recognizers, the default), "det"
(text detectors) and "cls" (text-line orientation classifiers). Names are unique across
kinds.
"""
from __future__ import annotations

from typing import Callable, Dict

KINDS = ("rec", "det", "cls")
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


def get_model(name: str, kind: str = "rec") -> Callable:
  """Returns the registered constructor for `name` of `kind`; raises with the known names."""
  import textrec.models  # noqa: F401  (registers the built-in models)

  _check_kind(kind)
  if name not in _MODELS[kind]:
    other = [k for k, reg in _MODELS.items() if name in reg]
    hint = f" ({name!r} is a {other[0]!r} model: pass kind={other[0]!r})" if other else ""
    raise KeyError(f"unknown {kind} model {name!r}{hint}; known {kind} models: "
                   f"{sorted(_MODELS[kind])}")
  return _MODELS[kind][name]


def model_names(kind: str = "rec") -> list[str]:
  """Registered names of `kind` (recognizers by default)."""
  import textrec.models  # noqa: F401

  _check_kind(kind)
  return sorted(_MODELS[kind])
