"""Official PaddleOCR ONNX models (paddle2onnx exports) -> PaddleOCR-named deploy weights.

The official ONNX files (shipped in `rapidocr-onnxruntime`) hold their weights as `Constant`
nodes named after Paddle's variables: `conv2d_157.w_0`, `batch_norm2d_2.w_1`,
`mobile_one_block_0.w_0`, `linear_85.b_0`, ... (PP-OCRv4 rec and det), or the legacy static
graph names of the 2.0 models (`conv1_weights`, `conv2_expand_bn_scale`, `fc_0.w_0`, ...; the
orientation classifier). They are deploy forms: every LearnableRepLayer is one
`reparam_conv` (a Conv with bias), BatchNorms are `BatchNormalization` nodes, LayerNorms are
spelled out as ReduceMean/Sub/Pow/Sqrt/Div followed by Mul(weight)/Add(bias).

The import has two steps:
  1. `_param_events`: walk the (topologically sorted) graph and turn every op that consumes a
     Paddle parameter into an event: conv (w[, b]; a bias-less Conv whose only consumer adds a
     parameter takes it as its bias), conv_transpose (w, b), bn (scale, bias, mean, var),
     affine (Mul by a parameter then Add a parameter: a LearnableAffineBlock or a LayerNorm's
     weight/bias) or linear (MatMul by a parameter then Add a parameter). A Reshape of a
     parameter by a constant shape is the parameter itself.
  2. `_Namer`: replay PaddleOCR's module structure in execution order, taking events one by
     one and naming them as PaddleOCR's deploy `state_dict` does:
       * `import_onnx`: PPLCNetV3 rec backbone + SVTR neck + CTC head (PP-OCRv4 mobile rec);
       * `import_det_onnx`: PPLCNetV3 det backbone + RSEFPN + DBHead (PP-OCRv4 / PP-OCRv5
         mobile det), or PPLCNetV4 det + RepLKFPN + DBHead with folded BatchNorms (PP-OCRv6
         small / tiny det);
       * `import_cls_onnx`: MobileNetV3 small + ClsHead (ch_ppocr_mobile_v2.0_cls), or
         PaddleClas's PP-LCNet (PP-LCNet_x1_0_textline_ori / _doc_ori; PaddleClas names, no
         `backbone.` prefix), told apart by the graph's end.
     A graph of another shape fails with the offending node named.

The NRTR head (`head.gtc_head.*`, `head.before_gtc.*`) and the DB threshold branch
(`head.thresh.*`) are not in the inference exports (training only).

The detectors' and classifiers' exports of Paddle 3 programs (the PP-OCRv5/v6 files) differ
in three ways that step 1 reads through: Identity nodes between ops (an Identity is its input), conv biases as unnamed
constants (`_v_680`, `p2o.pd_op.reshape.0.0` [1, C, 1, 1] added after the conv) and weights
computed at export under generated names (`auto.cast.95`, the v6 head's folded transposed
convs). So a Conv's or ConvTranspose's weight and bias are read whatever their names (a bias
must have the conv's C values); other ops still need Paddle-named parameters.

The PP-OCRv5/v6 recognizers' official files (paddle2onnx of Paddle 3 programs) are read
differently, by structure (`read_program`): their tensors become a `paddle_program.Program`
(Paddle's tensor names and shapes, in first-use order), which textrec.weights.paddle_infer maps
onto a registered model exactly as it maps a Paddle inference directory. paddle2onnx keeps
Paddle's names for most tensors; the rest are given back the names Paddle would use:
  * a conv bias, stored as the `[1, C, 1, 1]` constant added right after the conv:
    `<conv>.b_0` [C];
  * a LayerNorm's weight and bias, the constants of the Mul and Add after its decomposed
    normalisation (ReduceMean/Sub/Pow/Sqrt/Div): `layer_norm_<k>.w_0`, `.b_0`;
  * a Conv1D weight, stored `[C, I, 1, K]` for a Conv on an Unsqueeze'd input:
    `conv1d_<k>.w_0` [C, I, K].
Any other float tensor of more than one value that an op reads is an error, naming it.
`rec_charset` gives the character list (metadata `character`, else a dictionary file).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from textrec import charset as charset_lib
from textrec.errors import WeightsError
from textrec.formats import official_files
from textrec.weights import paddle_program

# PPLCNetV3 stages as PaddleOCR builds them: (state_dict prefix, number of blocks); the det
# variant has the same block counts.
PPLCNETV3_REC_STAGES = (("blocks2", 1), ("blocks3", 2), ("blocks4", 2), ("blocks5", 5),
                        ("blocks6", 4))
# MobileNetV3 small (the orientation classifier's backbone): number of ResidualUnits.
MOBILENETV3_SMALL_BLOCKS = 11
# PaddleClas's PP-LCNet (PaddleX's orientation classifiers): (stage, number of blocks).
PPLCNET_STAGES = (("blocks2", 1), ("blocks3", 2), ("blocks4", 2), ("blocks5", 6),
                  ("blocks6", 2))
# Deploy state_dict entries that an inference export never contains.
TRAINING_ONLY_PREFIXES = ("head.gtc_head.", "head.before_gtc.")
# paddle2onnx keeps Paddle's variable names for parameters: `<layer>_<n>.w_<k>` / `.b_<k>`
# (PIR exports add `_deepcopy_<m>`).
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.(w|b)_\d+(_deepcopy_\d+)?$")
# ... and the 2.0 static-graph exports their `<layer>_weights` / `<layer>_bn_scale` / ... names.
_LEGACY_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*_(weights|offset|scale|mean|variance)$")
# ... and a parameter reshaped by a Reshape that the exporter folded into a constant (the SE
# conv biases of PP-LCNet_x1_0_doc_ori, [1, C, 1, 1]).
_FOLDED_PARAM_NAME = re.compile(r"^p2o\.pd_op\.reshape\.\d+\.0$")


class OnnxImportError(WeightsError):
  """The ONNX file is not the graph this importer knows."""


@dataclasses.dataclass(frozen=True)
class _Event:
  kind: str  # "conv" | "conv_transpose" | "bn" | "affine" | "linear"
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


def _without_identities(graph) -> list:
  """`graph`'s nodes without its Identity nodes, every input read through them (copies)."""
  import onnx  # pylint: disable=g-import-not-at-top

  alias: dict[str, str] = {}
  nodes = []
  for n in graph.node:
    if n.op_type == "Identity":
      alias[n.output[0]] = alias.get(n.input[0], n.input[0])
      continue
    if any(i in alias for i in n.input):
      m = onnx.NodeProto()
      m.CopyFrom(n)
      m.input[:] = [alias.get(i, i) for i in n.input]
      n = m
    nodes.append(n)
  return nodes


def _conv_out_channels(n, weight: np.ndarray) -> int:
  """Output channels of a Conv (OIHW weight) or ConvTranspose ([I, O/group, kh, kw])."""
  if n.op_type == "ConvTranspose":
    group = int(_attrs(n).get("group", 1))
    return weight.shape[1] * group
  return weight.shape[0]


def _param_events(graph) -> list[_Event]:
  """Parameter-consuming ops of `graph` in execution order, as events (see module doc)."""
  consts = _constants(graph)
  names = {k for k in consts
           if any(r.match(k) for r in (_PARAM_NAME, _LEGACY_PARAM_NAME, _FOLDED_PARAM_NAME))}
  nodes = []
  for n in _without_identities(graph):
    if n.op_type == "Constant":
      continue
    if n.op_type == "Reshape" and n.input[0] in names and n.input[1] in consts:
      consts[n.output[0]] = np.reshape(consts[n.input[0]], consts[n.input[1]])
      names.add(n.output[0])  # the parameter itself, reshaped (legacy conv biases)
      continue
    nodes.append(n)
  is_param = names.__contains__
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

  def is_float_const(name: str) -> bool:
    return name in consts and np.issubdtype(consts[name].dtype, np.floating)

  def added_param(n, channels: int | None = None) -> str | None:
    """The parameter that `n`'s only consumer, an Add, adds to its output (else None); with
    `channels` (a conv's), also an unnamed constant [1, channels, 1, 1]."""
    users = consumers.get(n.output[0], [])
    if len(users) != 1 or users[0].op_type != "Add":
      return None
    other = [i for i in users[0].input if i != n.output[0]]
    if len(other) != 1:
      return None
    if is_param(other[0]):
      return other[0]
    if (channels is not None and is_float_const(other[0])
        and consts[other[0]].shape == (1, channels, 1, 1)):
      return other[0]
    return None

  def bias_add(n, what: str, channels: int | None = None) -> np.ndarray:
    """The parameter added to `n`'s output by its only consumer, an Add."""
    name = added_param(n, channels)
    if name is None:
      raise OnnxImportError(f"{what} {n.output[0]}: expected exactly one Add consumer adding "
                            f"a parameter, found "
                            f"{[u.op_type for u in consumers.get(n.output[0], [])]}")
    consumed.add(id(consumers[n.output[0]][0]))
    return param(name)

  events: list[_Event] = []
  consumed: set[int] = set()
  for n in nodes:
    conv_like = n.op_type in ("Conv", "ConvTranspose")
    params = [i for i in n.input if is_param(i) or (conv_like and is_float_const(i))]
    if not params or id(n) in consumed:
      continue
    where = f"{n.op_type} {n.output[0]}"
    if n.op_type == "Conv":
      if n.input[1] not in params or any(i not in params for i in n.input[2:]):
        raise OnnxImportError(f"{where}: expected Conv(x, weight[, bias]) with constant "
                              "weight and bias")
      w = param(n.input[1])
      c = _conv_out_channels(n, w)
      if len(n.input) > 2:
        b = param(n.input[2]).reshape(-1)
      else:  # legacy and Paddle 3 exports add the bias separately
        b = bias_add(n, "Conv", c).reshape(-1) if added_param(n, c) is not None else None
      if b is not None and b.shape != (c,):
        raise OnnxImportError(f"{where}: bias of shape {b.shape} for {c} output channels")
      events.append(_Event("conv", (w, b), where, _attrs(n)))
    elif n.op_type == "ConvTranspose":
      if list(n.input[1:]) != params:
        raise OnnxImportError(f"{where}: expected ConvTranspose(x, weight) then Add(bias)")
      w = param(params[0])
      b = bias_add(n, "ConvTranspose", _conv_out_channels(n, w)).reshape(-1)
      events.append(_Event("conv_transpose", (w, b), where, _attrs(n)))
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


class _Namer:
  """Takes events in order (a _Cursor) and names their arrays as PaddleOCR's deploy
  state_dict (`sd`); one method per Paddle layer kind, one per shared sub-network."""

  def __init__(self, events: Sequence[_Event]):
    self.cur, self.sd = _Cursor(events), {}

  def conv(self, name: str, bias: bool) -> _Event:
    ev = self.cur.take("conv", name)
    w, b = ev.arrays
    if bias != (b is not None):
      raise OnnxImportError(f"{ev.node} ({name}): expected a conv {'with' if bias else 'without'}"
                            " bias")
    self.sd[name + ".weight"] = w
    if bias:
      self.sd[name + ".bias"] = b
    return ev

  def conv_transpose(self, name: str) -> None:
    self.sd[name + ".weight"], self.sd[name + ".bias"] = self.cur.take("conv_transpose",
                                                                       name).arrays

  def bn(self, name: str) -> None:
    ev = self.cur.take("bn", name)
    for key, v in zip(("weight", "bias", "_mean", "_variance"), ev.arrays):
      self.sd[f"{name}.{key}"] = v

  def conv_bn(self, name: str) -> None:
    """A ConvBNLayer: `<name>.conv` (no bias) then `<name>.bn`."""
    self.conv(name + ".conv", bias=False)
    self.bn(name + ".bn")

  def affine(self, name: str, keys: tuple[str, str], size: int | None = None) -> None:
    ev = self.cur.take("affine", name)
    for key, v in zip(keys, ev.arrays):
      if size is not None and v.shape != (size,):
        raise OnnxImportError(f"{ev.node} ({name}.{key}): expected shape ({size},), "
                              f"got {v.shape}")
      self.sd[f"{name}.{key}"] = v

  def linear(self, name: str) -> None:
    w, b = self.cur.take("linear", name).arrays
    self.sd[name + ".weight"], self.sd[name + ".bias"] = w, b

  def se(self, name: str) -> None:
    """An SE module: `conv1` -> relu -> `conv2`, both with bias."""
    self.conv(name + ".conv1", bias=True)
    self.conv(name + ".conv2", bias=True)

  def at_se(self) -> bool:
    """Whether the next events are an SE module (two convs in a row; every other conv here is
    followed by a BatchNorm or a LearnableAffineBlock)."""
    return self.cur.peek() == "conv" and self.cur.peek(1) == "conv"

  def rep_layer(self, name: str) -> None:
    # LearnableRepLayer (deploy) runs reparam_conv -> lab -> act (hardswish + its lab; none
    # after an int stride 2); its state_dict lists reparam_conv last (rep() adds it last).
    self.conv(name + ".reparam_conv", bias=True)
    self.affine(name + ".lab", ("scale", "bias"), size=1)
    if self.cur.peek() == "affine":
      self.affine(name + ".act.lab", ("scale", "bias"), size=1)
    for key in ("weight", "bias"):
      self.sd[f"{name}.reparam_conv.{key}"] = self.sd.pop(f"{name}.reparam_conv.{key}")

  def pplcnetv3(self, stages: Sequence[tuple[str, int]] = PPLCNETV3_REC_STAGES) -> None:
    self.conv_bn("backbone.conv1")
    for stage, n_blocks in stages:
      for i in range(n_blocks):
        p = f"backbone.{stage}.{i}"
        self.rep_layer(p + ".dw_conv")
        if self.at_se():
          self.se(p + ".se")
        self.rep_layer(p + ".pw_conv")

  def pplcnetv4_det(self, model_size: str) -> None:
    """PPLCNetV4 (det) in its deploy form: the StemBlock's convs and every block's dw /
    expand / compress are convs with bias, a RepDWConv is `rep_dw.reparam_conv`."""
    from textrec.models import pplcnetv4  # pylint: disable=g-import-not-at-top

    for name in ("stem1", "stem2a", "stem2b", "stem3", "stem4"):
      self.conv(f"backbone.stem.{name}.conv", bias=True)
    for stage, blocks in pplcnetv4.CONFIGS_DET[model_size][1].items():
      for i, (cin, cout, stride, se) in enumerate(blocks):
        p = f"backbone.{stage}.{i}"
        rep = stride == 1 and cin == cout
        self.conv(p + (".token_mixer.rep_dw.reparam_conv" if rep else ".token_mixer.dw_conv"),
                  bias=True)
        if se:
          self.se(p + ".token_mixer.se")
        self.conv(p + ".channel_mixer.expand", bias=True)
        ev = self.conv(p + ".channel_mixer.compress", bias=True)
        if ev.arrays[0].shape[0] != cout:
          raise OnnxImportError(f"{ev.node} ({p}): {ev.arrays[0].shape[0]} output channels, "
                                f"PPLCNetV4 {model_size} (det) has {cout}")

  def done(self, after: str) -> dict[str, np.ndarray]:
    if self.cur.pos != len(self.cur.events):
      ev = self.cur.events[self.cur.pos]
      raise OnnxImportError(f"{len(self.cur.events) - self.cur.pos} parameter ops left over "
                            f"after the {after}, first {ev.kind} ({ev.node})")
    return self.sd


def _assign(events: Sequence[_Event],
            stages: Sequence[tuple[str, int]] = PPLCNETV3_REC_STAGES) -> dict[str, np.ndarray]:
  """Names the events as PaddleOCR's deploy state_dict of PPLCNetV3 + SVTR neck + CTC head."""
  nm = _Namer(events)
  nm.pplcnetv3(stages)
  enc = "head.ctc_encoder.encoder"
  for name in ("conv1", "conv2"):
    nm.conv(f"{enc}.{name}.conv", bias=False)
    nm.bn(f"{enc}.{name}.norm")
  i = 0
  while nm.cur.peek() == "affine" and nm.cur.peek(1) == "linear":  # a block starts with norm1
    p = f"{enc}.svtr_block.{i}"
    nm.affine(p + ".norm1", ("weight", "bias"))
    nm.linear(p + ".mixer.qkv")
    nm.linear(p + ".mixer.proj")
    nm.affine(p + ".norm2", ("weight", "bias"))
    nm.linear(p + ".mlp.fc1")
    nm.linear(p + ".mlp.fc2")
    i += 1
  if i == 0:
    raise OnnxImportError("found no SVTR block in the CTC neck")
  nm.affine(enc + ".norm", ("weight", "bias"))
  for name in ("conv3", "conv4", "conv1x1"):
    nm.conv(f"{enc}.{name}.conv", bias=False)
    nm.bn(f"{enc}.{name}.norm")
  nm.linear("head.ctc_head.fc")
  return nm.done("CTC head")


def _assign_det(events: Sequence[_Event]) -> dict[str, np.ndarray]:
  """Names the events as PaddleOCR's deploy state_dict of PPLCNetV3 (det) + RSEFPN + DBHead
  (its `binarize` branch), in the export's execution order."""
  nm = _Namer(events)
  nm.pplcnetv3(PPLCNETV3_REC_STAGES)
  for i in range(4):
    nm.conv(f"backbone.layer_list.{i}", bias=True)
  for branch in ("ins_conv", "inp_conv"):  # RSEFPN runs each from the coarsest level down
    for i in (3, 2, 1, 0):
      nm.conv(f"neck.{branch}.{i}.in_conv", bias=False)
      nm.se(f"neck.{branch}.{i}.se_block")
  head = "head.binarize"
  nm.conv(head + ".conv1", bias=False)
  nm.bn(head + ".conv_bn1")
  nm.conv_transpose(head + ".conv2")
  nm.bn(head + ".conv_bn2")
  nm.conv_transpose(head + ".conv3")
  return nm.done("DB head")


def _assign_det_v6(events: Sequence[_Event], model_size: str) -> dict[str, np.ndarray]:
  """Names the events as the deploy state_dict of PPLCNetV4 (det) + RepLKFPN + DBHead (its
  `binarize` branch, BatchNorms folded), in the export's execution order."""
  nm = _Namer(events)
  nm.pplcnetv4_det(model_size)
  for i in (3, 2, 1, 0):  # RepLKFPN runs its 1x1 RSE layers from the coarsest level down
    nm.conv(f"neck.ins_conv.{i}.in_conv", bias=False)
    nm.se(f"neck.ins_conv.{i}.se_block")
  for i in (3, 2, 1, 0):  # ... then each level's DilatedReparamBlock, 1x1 conv and SE
    nm.conv(f"neck.inp_conv_dw.{i}.lk_origin", bias=True)
    nm.conv(f"neck.inp_conv_pw.{i}", bias=False)
    nm.se(f"neck.inp_conv_se.{i}")
  head = "head.binarize"
  nm.conv(head + ".conv1", bias=True)
  nm.conv_transpose(head + ".conv2")
  nm.conv_transpose(head + ".conv3")
  return nm.done("DB head")


def _assign_cls(events: Sequence[_Event],
                n_blocks: int = MOBILENETV3_SMALL_BLOCKS) -> dict[str, np.ndarray]:
  """Names the events as PaddleOCR's state_dict of MobileNetV3 (rec variant) + ClsHead."""
  nm = _Namer(events)
  nm.conv_bn("backbone.conv1")
  for i in range(n_blocks):
    p = f"backbone.blocks.{i}"
    nm.conv_bn(p + ".expand_conv")
    nm.conv_bn(p + ".bottleneck_conv")
    if nm.at_se():
      nm.se(p + ".mid_se")
    nm.conv_bn(p + ".linear_conv")
  nm.conv_bn("backbone.conv2")
  nm.linear("head.fc")
  return nm.done("classifier head")


def _assign_pplcnet(events: Sequence[_Event],
                    stages: Sequence[tuple[str, int]] = PPLCNET_STAGES) -> dict[str, np.ndarray]:
  """Names the events as PaddleClas's state_dict of PP-LCNet (with `last_conv`)."""
  nm = _Namer(events)
  nm.conv_bn("conv1")
  for stage, n_blocks in stages:
    for i in range(n_blocks):
      p = f"{stage}.{i}"
      nm.conv_bn(p + ".dw_conv")
      if nm.at_se():
        nm.se(p + ".se")
      nm.conv_bn(p + ".pw_conv")
  nm.conv("last_conv", bias=False)
  nm.linear("fc")
  return nm.done("fc")


def _is_pplcnet(events: Sequence[_Event]) -> bool:
  """PP-LCNet ends with a bias-less 1x1 conv (`last_conv`) then the Linear; MobileNetV3's
  ClsHead follows a BatchNorm."""
  return (len(events) >= 2 and events[-1].kind == "linear" and events[-2].kind == "conv"
          and events[-2].arrays[1] is None)


def _assign_any_cls(events: Sequence[_Event]) -> dict[str, np.ndarray]:
  return (_assign_pplcnet if _is_pplcnet(events) else _assign_cls)(events)


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
  dims = _dims
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


def _dataflow(graph):
  """-> (src, producer, readers) looking through Identity nodes: src(tensor) is the tensor
  an Identity chain starts from, producer {tensor: the node writing it}, readers {tensor:
  the nodes reading it}, both keyed by src names."""
  alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

  def src(name: str) -> str:
    while name in alias:
      name = alias[name]
    return name

  producer: dict[str, object] = {}
  readers: dict[str, list] = {}
  for n in graph.node:
    if n.op_type != "Identity":
      producer.update((o, n) for o in n.output)
      for i in n.input:
        readers.setdefault(src(i), []).append(n)
  return src, producer, readers


def read_program(model, path: str) -> tuple[paddle_program.Program, dict[str, np.ndarray]]:
  """A paddle2onnx export -> (Program of its parameters under Paddle's names, in first-use
  order, with Paddle's shapes; {name: float32 array}). See the module doc."""
  graph = model.graph
  consts = _constants(graph)
  src, producer, readers = _dataflow(graph)
  named = {k for k in consts if _PARAM_NAME.match(k)}
  tensors: dict[str, np.ndarray] = {}
  uses: list[str] = []
  taken: dict[str, str] = {}  # ONNX constant -> the Paddle name it was given
  counters: dict[str, int] = {}

  def fresh(layer: str) -> str:
    k = counters.get(layer, 0)
    while any(n.startswith(f"{layer}_{k}.") for n in named):
      k += 1
    counters[layer] = k + 1
    return f"{layer}_{k}"

  def use(onnx_name: str, name: str, arr: np.ndarray) -> None:
    if onnx_name in taken:
      if taken[onnx_name] != name:
        raise OnnxImportError(f"{path}: constant {onnx_name} is read as {taken[onnx_name]} and "
                              f"as {name}")
      return
    taken[onnx_name] = name
    tensors[name] = np.array(arr, dtype=np.float32)
    uses.append(name)

  def only_add(out: str):
    users = readers.get(out, [])
    return users[0] if len(users) == 1 and users[0].op_type == "Add" else None

  def other_const(n, out: str) -> str | None:
    others = [src(i) for i in n.input if src(i) != out]
    return others[0] if len(others) == 1 and others[0] in consts else None

  for n in graph.node:
    if n.op_type in ("Identity", "Constant"):
      continue
    ins = [src(i) for i in n.input]
    for pos, i in enumerate(ins):
      if i not in consts or i in taken:
        continue
      arr = consts[i]
      if i in named:
        use(i, i, arr)
      elif n.op_type == "Conv" and pos == 1 and arr.ndim == 4 and arr.shape[2] == 1 and (
          ins[0] in producer and producer[ins[0]].op_type == "Unsqueeze"):
        use(i, fresh("conv1d") + ".w_0", arr[:, :, 0, :])
      elif n.op_type == "Conv" and pos == 2 and ins[1] in named:
        use(i, ins[1].rsplit(".", 1)[0] + ".b_0", arr.reshape(-1))
      elif n.op_type == "Add" and _conv_weight(n, i, producer, src, named) is not None:
        w = _conv_weight(n, i, producer, src, named)
        if arr.shape != (1, consts[w].shape[0], 1, 1):
          raise OnnxImportError(f"{path}: Add {n.output[0]} adds {i} {list(arr.shape)} to conv "
                                f"{w} {list(consts[w].shape)}: not its bias")
        use(i, w.rsplit(".", 1)[0] + ".b_0", arr.reshape(-1))
      elif (n.op_type == "Mul" and arr.ndim == 1 and arr.size > 1
            and any(producer.get(j) is not None and producer[j].op_type == "Div"
                    for j in ins if j != i)):
        add = only_add(n.output[0])
        b = other_const(add, n.output[0]) if add is not None else None
        if b is None or consts[b].shape != arr.shape or b in named:
          raise OnnxImportError(f"{path}: {n.op_type} {n.output[0]} scales a normalisation by "
                                f"{i} {list(arr.shape)} but no Add of a bias of that shape "
                                "follows (not a LayerNorm)")
        layer = fresh("layer_norm")
        use(i, layer + ".w_0", arr)
        use(b, layer + ".b_0", consts[b])
      elif np.issubdtype(arr.dtype, np.floating) and arr.size > 1 and n.op_type not in (
          "Reshape", "Slice", "Expand", "Tile", "Resize"):
        raise OnnxImportError(f"{path}: {n.op_type} {n.output[0]} reads constant {i} "
                              f"{list(arr.shape)}, which is no parameter this importer knows "
                              "(a conv bias, a LayerNorm weight or bias, a Conv1D weight)")
  if not uses:
    raise OnnxImportError(f"{path}: found no parameters (no tensor named as Paddle names them)")
  params = {k: list(tensors[k].shape) for k in uses}
  return paddle_program.Program(path, "onnx", params, uses), tensors


def _conv_weight(add, const: str, producer, src, named) -> str | None:
  """The (Paddle-named) weight of the bias-less Conv whose output `add` adds `const` to."""
  others = [src(j) for j in add.input if src(j) != const]
  conv = producer.get(others[0]) if len(others) == 1 else None
  if conv is None or conv.op_type != "Conv" or len(conv.input) != 2:
    return None
  return src(conv.input[1]) if src(conv.input[1]) in named else None


def rec_charset(model, model_name: str, num_classes: int, where: str) -> charset_lib.Charset:
  """The official recognizer's characters: its ONNX metadata `character`, else the
  dictionary file official_files.dict_path(model_name); blank + characters + space must be
  the CTC head's `num_classes`."""
  meta = {p.key for p in model.metadata_props}
  if "character" in meta:
    cs, src = charset_from_onnx(model), f"{where} (metadata 'character')"
  else:
    dict_file = official_files.dict_path(model_name)
    if dict_file is None:
      raise WeightsError(f"{where}: the ONNX metadata has no 'character' list and no "
                         f"dictionary file is known for {model_name}")
    cs, src = charset_lib.load_dict(dict_file), dict_file
  if cs.num_classes != num_classes:
    raise WeightsError(f"{src}: blank + {len(cs.chars)} characters with the space = "
                       f"{cs.num_classes} classes, but the CTC head of {where} has "
                       f"{num_classes}: the dictionary is not this model's")
  return cs


def official_charset(model, model_name: str, path: str) -> charset_lib.Charset:
  """`rec_charset` of an official recognizer file, checked against the class count its
  output declares ([B, T, classes])."""
  classes = _dims(model.graph.output[0])[-1] if len(model.graph.output) == 1 else None
  if not isinstance(classes, int) or classes <= 0:
    raise OnnxImportError(f"{path}: expected one output [B, T, classes] with the class count "
                          f"declared, got {[(o.name, _dims(o)) for o in model.graph.output]}")
  return rec_charset(model, model_name, classes, path)


def default_charset(dict_path: str | None = None) -> charset_lib.Charset:
  """The dictionary file given, else PaddleOCR's ppocr_keys_v1 (+ space), which all four
  v4-generation recognizers' published weights use, read from the official ONNX's metadata."""
  import onnx  # pylint: disable=g-import-not-at-top

  if dict_path:
    return charset_lib.load_dict(dict_path)
  path = official_files.onnx_path("PP-OCRv4_mobile_rec")
  return charset_from_onnx(onnx.load(path, load_external_data=False))


def _dims(v) -> list:
  return [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]


def _import_graph(path: str | os.PathLike, assign, out_dims: int, out_channels: int | None
                  ) -> dict[str, np.ndarray]:
  """Loads `path`, checks one NCHW 3-channel input and one output of `out_dims` dims whose
  axis 1 has `out_channels` (any when None; an output whose shape the file does not declare
  passes), and names its parameters with `assign(events)`."""
  path = os.fspath(path)
  model = load_onnx(path)
  g = model.graph
  if len(g.input) != 1 or len(_dims(g.input[0])) != 4 or _dims(g.input[0])[1] != 3:
    raise OnnxImportError(f"{path}: expected one NCHW input with 3 channels, got "
                          f"{[(i.name, _dims(i)) for i in g.input]}")
  out = _dims(g.output[0]) if len(g.output) == 1 else None
  if out is None or (out and (len(out) != out_dims or (
      out_channels is not None and out[1] != out_channels
      and not isinstance(out[1], str)))):  # a named channel dimension: not declared
    chans = f" with {out_channels} channels on axis 1" if out_channels is not None else ""
    raise OnnxImportError(f"{path}: expected one {out_dims}-d output{chans}, got "
                          f"{[(o.name, _dims(o)) for o in g.output]}")
  try:
    return assign(_param_events(g))
  except OnnxImportError as e:
    raise OnnxImportError(f"{path}: {e}") from None


# Detectors whose official ONNX this importer reads -> the assigner of their graph.
DET_ASSIGNERS = {
    "PP-OCRv4_mobile_det": _assign_det,
    "PP-OCRv5_mobile_det": _assign_det,
    "PP-OCRv6_small_det": lambda events: _assign_det_v6(events, "small"),
    "PP-OCRv6_tiny_det": lambda events: _assign_det_v6(events, "tiny"),
}


def import_det_onnx(path: str | os.PathLike, model_name: str = "PP-OCRv4_mobile_det"
                    ) -> dict[str, np.ndarray]:
  """Official det ONNX of `model_name` (a DET_ASSIGNERS key; output [B, 1, H, W]) ->
  {PaddleOCR deploy name: float32 array}; conv weights OIHW, transposed-conv weights
  [Cin, Cout, k, k] as Paddle's."""
  if model_name not in DET_ASSIGNERS:
    raise OnnxImportError(f"no ONNX importer for detector {model_name!r}; known: "
                          f"{sorted(DET_ASSIGNERS)}")
  return _import_graph(path, DET_ASSIGNERS[model_name], 4, 1)


def import_cls_onnx(path: str | os.PathLike, num_classes: int | None = None
                    ) -> dict[str, np.ndarray]:
  """Official orientation classifier ONNX (output [B, num_classes]; any when None) ->
  {Paddle name: float32 array}; conv weights OIHW, the Linear weight [in, out].

  ch_ppocr_mobile_v2.0_cls (MobileNetV3 + ClsHead: PaddleOCR names) or PaddleX's
  PP-LCNet_x1_0_textline_ori / _doc_ori (PP-LCNet: PaddleClas names), told apart by the
  graph's end (module doc)."""
  sd = _import_graph(path, _assign_any_cls, 2, num_classes)
  got = next(v.shape[0] for k, v in sd.items() if k.endswith("fc.bias"))
  if num_classes is not None and got != num_classes:
    raise OnnxImportError(f"{os.fspath(path)}: the classifier has {got} classes, expected "
                          f"{num_classes}")
  return sd


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
