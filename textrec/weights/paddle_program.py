"""The program of a Paddle inference directory, read without PaddlePaddle: which persistable
tensors (parameters) it holds, their shapes, and the order in which its ops first use them.

Two formats:
  * PIR `inference.json` (PaddlePaddle 3): a JSON program whose parameter ops (`"#": "p"`)
    name each tensor and give it a value id; later ops read values by id (`"I": [{"%": id}]`)
    and carry `struct_name` attributes (`/PPLCNetV3/Sequential/...`: the layer classes).
  * legacy `inference.pdmodel` (Paddle < 3, PaddleOCR 2.x): a ProgramDesc protobuf
    (textrec.weights.paddle_proto); block 0's persistable variables are the tensors, its ops
    read them by name.
Only block 0 / the top region is read: recognizers' inference programs have no control flow.
"""
from __future__ import annotations

import dataclasses
import json
import os

from google.protobuf import message

from textrec.errors import WeightsError
from textrec.weights import paddle_proto

_FEED_FETCH = ("feed", "fetch")
# VarType.Type codes (framework.proto) of variables that are not saved tensors.
_NOT_TENSORS = {9, 10, 16}  # FEED_MINIBATCH, FETCH_LIST, FETCH_VAR_LIST
_LOD_TENSOR = 7


class ProgramError(WeightsError):
  """A program file that cannot be read."""


@dataclasses.dataclass
class Program:
  """params: {name: dims} of the saved tensors; uses: those names in the order the program's
  ops first read them; backbone: the first layer class of the program (PIR only, else "")."""

  path: str
  format: str                       # "pir" | "legacy"
  params: dict[str, list[int]]
  uses: list[str]
  backbone: str = ""

  @property
  def unused(self) -> list[str]:
    seen = set(self.uses)
    return [n for n in self.params if n not in seen]


def read(path: str | os.PathLike) -> Program:
  """Reads `inference.json` (PIR) or `inference.pdmodel` (legacy) by extension."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such program file")
  return read_pir(path) if path.endswith(".json") else read_legacy(path)


def read_pir(path: str) -> Program:
  try:
    with open(path, encoding="utf-8") as f:
      prog = json.load(f)
    magic = prog.get("base_code", {}).get("magic")
    block = prog["program"]["regions"][0]["blocks"][0]
    ops = block["ops"]
  except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError,
          TypeError, AttributeError) as e:
    raise ProgramError(f"{path}: not a PaddlePaddle PIR program ({type(e).__name__}: {e})"
                       ) from None
  if magic != "pir":
    raise ProgramError(f"{path}: base_code.magic is {magic!r}, not 'pir': not a PaddlePaddle "
                       "3 program")
  params: dict[str, list[int]] = {}
  value_name: dict[int, str] = {}
  uses: list[str] = []
  seen: set[str] = set()
  backbone = ""
  for i, op in enumerate(ops):
    kind = op.get("#")
    if kind in ("p", "1.parameter"):
      try:
        name = op["A"][3] if isinstance(op["A"], list) else op["A"]["parameter_name"]
        value_name[op["O"]["%"]] = name
        params[name] = [int(d) for d in op["O"]["TT"]["D"][1]]
      except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ProgramError(f"{path}: op {i} is a parameter op of an unknown layout ({e})"
                           ) from None
      continue
    if not backbone:
      backbone = _struct_root(op)
    for ref in op.get("I", []):
      name = value_name.get(ref.get("%")) if isinstance(ref, dict) else None
      if name is not None and name not in seen:
        seen.add(name)
        uses.append(name)
  if not params:
    raise ProgramError(f"{path}: the program has no parameters")
  return Program(path, "pir", params, uses, backbone)


def _struct_root(op: dict) -> str:
  for a in op.get("A", []) if isinstance(op.get("A"), list) else []:
    if isinstance(a, dict) and a.get("N") == "struct_name":
      parts = [p for p in str(a.get("AT", {}).get("D", "")).split("/") if p]
      return parts[0] if parts else ""
  return ""


def read_legacy(path: str) -> Program:
  with open(path, "rb") as f:
    buf = f.read()
  try:
    prog = paddle_proto.ProgramDesc.FromString(buf)
    if not prog.blocks:
      raise ProgramError(f"{path}: no blocks: not a Paddle ProgramDesc (inference.pdmodel)")
    block = prog.blocks[0]
    params = {}
    for var in block.vars:
      name = var.name.decode("utf-8")
      if var.persistable and var.type.type == _LOD_TENSOR and name not in _FEED_FETCH:
        params[name] = list(var.type.lod_tensor.tensor.dims)
    uses, seen = [], set()
    for op in block.ops:
      for arg in (a for inp in op.inputs for a in inp.arguments):
        name = arg.decode("utf-8")
        if name in params and name not in seen:
          seen.add(name)
          uses.append(name)
  except (message.DecodeError, UnicodeDecodeError) as e:
    raise ProgramError(f"{path}: not a Paddle ProgramDesc protobuf ({e})") from None
  if not params:
    raise ProgramError(f"{path}: the program has no persistable tensors")
  return Program(path, "legacy", params, uses)
