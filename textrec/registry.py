"""Name -> constructor registries, so a config names its model (big_vision style)."""
from __future__ import annotations

from typing import Callable, Dict

_MODELS: Dict[str, Callable] = {}


def register_model(name: str) -> Callable[[Callable], Callable]:
  """Decorator: `@register_model("PP-OCRv4_mobile_rec")` on a function returning a module."""

  def wrap(fn: Callable) -> Callable:
    if name in _MODELS:
      raise ValueError(f"model {name!r} registered twice")
    _MODELS[name] = fn
    return fn

  return wrap


def get_model(name: str) -> Callable:
  """Returns the registered constructor for `name`; raises with the known names."""
  import textrec.models  # noqa: F401  (registers the built-in models)

  if name not in _MODELS:
    raise KeyError(f"unknown model {name!r}; known models: {sorted(_MODELS)}")
  return _MODELS[name]


def model_names() -> list[str]:
  import textrec.models  # noqa: F401

  return sorted(_MODELS)
