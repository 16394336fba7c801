"""Official PaddleOCR ONNX recognizer (a paddle2onnx export) -> PaddleOCR-named deploy weights.

The official PP-OCRv4 mobile rec ONNX (shipped in `rapidocr-onnxruntime`) holds its weights as
`Constant` nodes named after Paddle's variables (`conv2d_157.w_0`, `batch_norm2d_2.w_1`,
`mobile_one_block_0.w_0`, `linear_85.b_0`, ...). It is the deploy form: every
LearnableRepLayer is one `reparam_conv` (a Conv with bias), BatchNorms are kept as
`BatchNormalization` nodes (conv1 and the 5 ConvBNLayers of the SVTR neck), LayerNorms are
spelled out as ReduceMean/Sub/Pow/Sqrt/Div followed by Mul(weight)/Add(bias).

The import has two steps:
  1. `_param_events`: walk the (topologically sorted) graph and turn every op that consumes a
     Paddle parameter into an event: conv (w[, b]), bn (scale, bias, mean, var),
     affine (Mul by a parameter then Add a parameter: a LearnableAffineBlock or a LayerNorm's
     weight/bias) or linear (MatMul by a parameter then Add a parameter).
  2. `_assign`: replay PaddleOCR's module structure (PPLCNetV3 rec backbone + SVTR neck + CTC
     head) in execution order, taking events one by one and naming them as PaddleOCR's
     deploy `state_dict` does. A graph of another shape fails with the offending node named.

The NRTR head (`head.gtc_head.*`, `head.before_gtc.*`) is not in the ONNX (training only).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from textrec import charset as charset_lib

# PPLCNetV3 (rec) stages as PaddleOCR builds them: (state_dict prefix, number of blocks).
PPLCNETV3_REC_STAGES = (("blocks2", 1), ("blocks3", 2), ("blocks4", 2), ("blocks5", 5),
                        ("blocks6", 4))
# Deploy state_dict entries that an inference export never contains.
TRAINING_ONLY_PREFIXES = ("head.gtc_head.", "head.before_gtc.")
# paddle2onnx keeps Paddle's variable names for parameters: `<layer>_<n>.w_<k>` / `.b_<k>`.
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.(w|b)_\d+$")


class OnnxImportError(ValueError):
  """The ONNX file is not the graph this importer knows."""


@dataclasses.dataclass(frozen=True)
class _Event:
  kind: str  # "conv" | "bn" | "affine" | "linear"
  arrays: tuple[np.ndarray | None, ...]
  node: str  # "<op_type> <first output>" for error messages
  attrs: Mapping[str, object] = dataclasses.field(default_factory=dict)


def load_onnx(path: str | os.PathLike):
  """Reads an ONNX file; clear errors for a missing or unreadable file."""
  import onnx

  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"ONNX model not found: {path}")
  try:
    return onnx.load(path)
  except Exception as e:  # onnx raises DecodeError and friends
    raise OnnxImportError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e


def _constants(graph) -> dict[str, np.ndarray]:
  from onnx import numpy_helper

  out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
  for n in graph.node:
    if n.op_type == "Constant":
      for a in n.attribute:
        if a.name == "value":
          out[n.output[0]] = numpy_helper.to_array(a.t)
  return out


def _attrs(node) -> dict[str, object]:
  import onnx

  return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _param_events(graph) -> list[_Event]:
  """Parameter-consuming ops of `graph` in execution order, as events (see module doc)."""
  consts = _constants(graph)
  is_param = lambda name: name in consts and bool(_PARAM_NAME.match(name))  # noqa: E731
  nodes = [n for n in graph.node if n.op_type != "Constant"]
  consumers: dict[str, list] = {}
  known = {i.name for i in graph.input} | set(consts)
  for n in nodes:
    for i in n.input:
      if i and i not in known:
        raise OnnxImportError(f"graph is not topologically sorted: {n.op_type} {n.output[0]} "
                              f"reads {i!r} before it is produced")
      consumers.setdefault(i, []).append(n)
    known.update(n.output)

  def param(name: str) -> np.ndarray:
    return np.array(consts[name], dtype=np.float32)  # a writable float32 copy

  def bias_add(n, what: str) -> np.ndarray:
    """The parameter added to `n`'s output by its only consumer, an Add."""
    users = consumers.get(n.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add":
      raise OnnxImportError(f"{what} {n.output[0]}: expected exactly one Add consumer, "
                            f"found {[u.op_type for u in users]}")
    add = users[0]
    other = [i for i in add.input if i != n.output[0]]
    if len(other) != 1 or not is_param(other[0]):
      raise OnnxImportError(f"{what} {n.output[0]}: its Add {add.output[0]} adds no parameter")
    consumed.add(id(add))
    return param(other[0])

  events: list[_Event] = []
  consumed: set[int] = set()
  for n in nodes:
    params = [i for i in n.input if is_param(i)]
    if not params or id(n) in consumed:
      continue
    where = f"{n.op_type} {n.output[0]}"
    if n.op_type == "Conv":
      if n.input[1] not in params or any(i not in params for i in n.input[2:]):
        raise OnnxImportError(f"{where}: expected Conv(x, weight[, bias]) with parameter names")
      b = param(n.input[2]) if len(n.input) > 2 else None
      events.append(_Event("conv", (param(n.input[1]), b), where, _attrs(n)))
    elif n.op_type == "BatchNormalization":
      if params != list(n.input[1:5]):
        raise OnnxImportError(f"{where}: expected BatchNormalization(x, scale, B, mean, var)")
      events.append(_Event("bn", tuple(param(i) for i in n.input[1:5]), where, _attrs(n)))
    elif n.op_type == "MatMul":
      if list(n.input[1:]) != params or consts[params[0]].ndim != 2:
        raise OnnxImportError(f"{where}: expected MatMul(x, weight[in, out])")
      events.append(_Event("linear", (param(params[0]), bias_add(n, "MatMul")), where))
    elif n.op_type == "Mul":
      if len(params) != 1:
        raise OnnxImportError(f"{where}: expected Mul of a tensor by one parameter")
      events.append(_Event("affine", (param(params[0]), bias_add(n, "Mul")), where))
    else:
      raise OnnxImportError(f"{where}: unexpected op reading parameters {params}")
  return events


class _Cursor:
  """Hands out events in order; names what it expected when the graph differs."""

  def __init__(self, events: Sequence[_Event]):
    self.events, self.pos = list(events), 0

  def peek(self, k: int = 0) -> str | None:
    i = self.pos + k
    return self.events[i].kind if i < len(self.events) else None

  def take(self, kind: str, for_name: str) -> _Event:
    if self.pos >= len(self.events):
      raise OnnxImportError(f"graph ended early: expected a {kind} for {for_name}")
    ev = self.events[self.pos]
    if ev.kind != kind:
      raise OnnxImportError(f"expected a {kind} for {for_name}, found a {ev.kind} ({ev.node})")
    self.pos += 1
    return ev


def _assign(events: Sequence[_Event],
            stages: Sequence[tuple[str, int]] = PPLCNETV3_REC_STAGES) -> dict[str, np.ndarray]:
  """Names the events as PaddleOCR's deploy state_dict of PPLCNetV3 + SVTR neck + CTC head."""
  cur, sd = _Cursor(events), {}

  def conv(name: str, bias: bool) -> _Event:
    ev = cur.take("conv", name)
    w, b = ev.arrays
    if bias != (b is not None):
      raise OnnxImportError(f"{ev.node} ({name}): expected a conv {'with' if bias else 'without'}"
                            " bias")
    sd[name + ".weight"] = w
    if bias:
      sd[name + ".bias"] = b
    return ev

  def bn(name: str) -> None:
    ev = cur.take("bn", name)
    for key, v in zip(("weight", "bias", "_mean", "_variance"), ev.arrays):
      sd[f"{name}.{key}"] = v

  def affine(name: str, keys: tuple[str, str], size: int | None = None) -> None:
    ev = cur.take("affine", name)
    for key, v in zip(keys, ev.arrays):
      if size is not None and v.shape != (size,):
        raise OnnxImportError(f"{ev.node} ({name}.{key}): expected shape ({size},), "
                              f"got {v.shape}")
      sd[f"{name}.{key}"] = v

  def linear(name: str) -> None:
    w, b = cur.take("linear", name).arrays
    sd[name + ".weight"], sd[name + ".bias"] = w, b

  def rep_layer(name: str) -> None:
    # LearnableRepLayer (deploy) runs reparam_conv -> lab -> act (hardswish + its lab); its
    # state_dict lists reparam_conv last (rep() adds it after the others).
    conv(name + ".reparam_conv", bias=True)
    affine(name + ".lab", ("scale", "bias"), size=1)
    affine(name + ".act.lab", ("scale", "bias"), size=1)
    for key in ("weight", "bias"):
      sd[f"{name}.reparam_conv.{key}"] = sd.pop(f"{name}.reparam_conv.{key}")

  conv("backbone.conv1.conv", bias=False)
  bn("backbone.conv1.bn")
  for stage, n_blocks in stages:
    for i in range(n_blocks):
      p = f"backbone.{stage}.{i}"
      rep_layer(p + ".dw_conv")
      if cur.peek() == "conv" and cur.peek(1) == "conv":  # SE: conv1 -> relu -> conv2
        conv(p + ".se.conv1", bias=True)
        conv(p + ".se.conv2", bias=True)
      rep_layer(p + ".pw_conv")

  enc = "head.ctc_encoder.encoder"
  for name in ("conv1", "conv2"):
    conv(f"{enc}.{name}.conv", bias=False)
    bn(f"{enc}.{name}.norm")
  i = 0
  while cur.peek() == "affine" and cur.peek(1) == "linear":  # an SVTR block starts with norm1
    p = f"{enc}.svtr_block.{i}"
    affine(p + ".norm1", ("weight", "bias"))
    linear(p + ".mixer.qkv")
    linear(p + ".mixer.proj")
    affine(p + ".norm2", ("weight", "bias"))
    linear(p + ".mlp.fc1")
    linear(p + ".mlp.fc2")
    i += 1
  if i == 0:
    raise OnnxImportError("found no SVTR block in the CTC neck")
  affine(enc + ".norm", ("weight", "bias"))
  for name in ("conv3", "conv4", "conv1x1"):
    conv(f"{enc}.{name}.conv", bias=False)
    bn(f"{enc}.{name}.norm")
  linear("head.ctc_head.fc")
  if cur.pos != len(cur.events):
    ev = cur.events[cur.pos]
    raise OnnxImportError(f"{len(cur.events) - cur.pos} parameter ops left over after the CTC "
                          f"head, first {ev.kind} ({ev.node})")
  return sd


def charset_from_onnx(model) -> charset_lib.Charset:
  """The CTC character list stored by PaddleOCR/RapidOCR in metadata_props["character"]."""
  meta = {p.key: p.value for p in model.metadata_props}
  if "character" not in meta:
    raise OnnxImportError(f"ONNX metadata has no 'character' entry (keys: {sorted(meta)})")
  chars = [c for c in meta["character"].split("\n") if c != ""]
  if len(set(chars)) != len(chars):
    raise OnnxImportError("ONNX metadata 'character' lists a character twice")
  return charset_lib.from_chars(chars, use_space_char=True)


def _check_io(model, path: str, num_classes: int) -> None:
  g = model.graph
  dims = lambda v: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]  # noqa
  if len(g.input) != 1 or len(dims(g.input[0])) != 4 or dims(g.input[0])[1] != 3:
    raise OnnxImportError(f"{path}: expected one NCHW input with 3 channels, got "
                          f"{[(i.name, dims(i)) for i in g.input]}")
  if len(g.output) != 1 or dims(g.output[0])[-1] != num_classes:
    raise OnnxImportError(f"{path}: expected one output [B, T, {num_classes}] (the metadata's "
                          f"characters + blank + space), got "
                          f"{[(o.name, dims(o)) for o in g.output]}")


def import_onnx(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], charset_lib.Charset]:
  """Official PP-OCRv4 mobile rec ONNX -> ({PaddleOCR deploy name: float32 array}, Charset).

  Conv weights stay OIHW and Linear weights [in, out], exactly as in PaddleOCR's state_dict.
  """
  path = os.fspath(path)
  model = load_onnx(path)
  cs = charset_from_onnx(model)
  _check_io(model, path, cs.num_classes)
  try:
    sd = _assign(_param_events(model.graph))
  except OnnxImportError as e:
    raise OnnxImportError(f"{path}: {e}") from None
  if sd["head.ctc_head.fc.bias"].shape != (cs.num_classes,):
    raise OnnxImportError(f"{path}: CTC head has {sd['head.ctc_head.fc.bias'].shape[0]} "
                          f"classes but the metadata lists {cs.num_classes}")
  return sd, cs


def check_shapes(state: Mapping[str, np.ndarray], expected: Mapping[str, Sequence[int]],
                 skip_prefixes: Iterable[str] = TRAINING_ONLY_PREFIXES) -> None:
  """Raises if `state` and `expected` (name -> shape) differ, ignoring `skip_prefixes`."""
  skip = tuple(skip_prefixes)
  want = {k: tuple(v) for k, v in expected.items() if not k.startswith(skip)}
  missing = sorted(set(want) - set(state))
  extra = sorted(set(state) - set(want))
  wrong = sorted(k for k in set(want) & set(state) if tuple(state[k].shape) != want[k])
  if missing or extra or wrong:
    raise OnnxImportError(
        f"state dict differs from the expected names/shapes: missing {missing[:5]}"
        f"{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
        f"{'...' if len(extra) > 5 else ''}, wrong shape "
        f"{[(k, tuple(state[k].shape), want[k]) for k in wrong[:5]]}")
