"""Paddle's `save_combine` tensor stream (`inference.pdiparams`), read and written without
PaddlePaddle.

The file is the program's persistable tensors, sorted by name, one after another:
  u32 version (0) | u64 LoD levels (0 here; each level: u64 size + bytes) |
  u32 tensor version (0) | i32 n | n bytes of a VarType.TensorDesc protobuf
  (textrec.weights.paddle_proto: data type code, dims) | the raw little-endian data.
The names are not in the file: they come from the program (textrec.weights.paddle_program).
"""
from __future__ import annotations

import hashlib
import os
import struct
from typing import Mapping, Sequence

import ml_dtypes
import numpy as np

from google.protobuf import message

from textrec.errors import WeightsError
from textrec.weights import paddle_proto

# Paddle VarType codes of the dense dtypes a parameter file can hold.
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
           6: np.float64, 20: np.uint8, 21: np.int8}
_BF16 = 22


def _np_dtype(code: int, where: str) -> np.dtype:
  if code == _BF16:
    return np.dtype(ml_dtypes.bfloat16)
  if code not in _DTYPES:
    raise PdiparamsError(f"{where}: Paddle data type {code} is not a dense numeric type")
  return np.dtype(_DTYPES[code]).newbyteorder("<")


def _code(dtype: np.dtype) -> int:
  for code, t in _DTYPES.items():
    if np.dtype(t) == np.dtype(dtype).newbyteorder("="):
      return code
  if np.dtype(dtype).name == "bfloat16":
    return _BF16
  raise ValueError(f"dtype {dtype} has no Paddle VarType code")


class PdiparamsError(WeightsError):
  """A `.pdiparams` file that is truncated, corrupt or does not fit its program."""


def read(path: str | os.PathLike, names: Sequence[str],
         shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, np.ndarray]:
  """Reads the tensors of `names` (the program's persistable variables, any order) from
  `path`. `shapes`: the program's dims per name, checked against the file's (-1 = any).
  Raises PdiparamsError naming the file, the tensor and what is wrong; nothing half-read is
  returned."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file (the weights of the inference directory)")
  with open(path, "rb") as f:
    buf = f.read()
  order = sorted(names)
  out: dict[str, np.ndarray] = {}
  pos = 0

  def take(n: int, what: str, i: int) -> bytes:
    nonlocal pos
    if pos + n > len(buf):
      raise PdiparamsError(
          f"{path}: truncated in tensor {i + 1} of {len(order)} ({order[i]!r}, {what}): needs "
          f"{n} bytes at byte {pos}, the file has {len(buf)} bytes")
    b = buf[pos:pos + n]
    pos += n
    return b

  for i, name in enumerate(order):
    (version,) = struct.unpack("<I", take(4, "version", i))
    if version != 0:
      raise PdiparamsError(f"{path}: tensor {i + 1} ({name!r}) at byte {pos - 4} has version "
                           f"{version}, not 0: not a Paddle save_combine file, or corrupt")
    (levels,) = struct.unpack("<Q", take(8, "LoD", i))
    for _ in range(levels):
      (n,) = struct.unpack("<Q", take(8, "LoD", i))
      take(n, "LoD", i)
    take(4, "tensor version", i)
    (n,) = struct.unpack("<i", take(4, "descriptor size", i))
    code, dims = _decode_desc(take(n, "descriptor", i), f"{path}: tensor {name!r}")
    dtype = _np_dtype(code, f"{path}: tensor {name!r}")
    count = int(np.prod(dims)) if dims else 1
    data = take(count * dtype.itemsize, "data", i)
    arr = np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))
    if shapes is not None and name in shapes:
      want = list(shapes[name])
      if len(want) != len(dims) or any(w not in (-1, d) for w, d in zip(want, dims)):
        raise PdiparamsError(f"{path}: tensor {name!r} has shape {dims} but the program "
                             f"declares {want}: the weights are not this program's")
    out[name] = arr
  if pos != len(buf):
    raise PdiparamsError(f"{path}: {len(buf) - pos} bytes left after the program's "
                         f"{len(order)} tensors: the weights are not this program's")
  return out


def _decode_desc(buf: bytes, where: str) -> tuple[int, list[int]]:
  try:
    desc = paddle_proto.TensorDesc.FromString(buf)
  except message.DecodeError as e:
    raise PdiparamsError(f"{where}: corrupt tensor descriptor ({e})") from None
  if not desc.HasField("data_type"):
    raise PdiparamsError(f"{where}: tensor descriptor without a data type")
  return desc.data_type, list(desc.dims)


def dumps(tensors: Mapping[str, np.ndarray]) -> bytes:
  """{name: array} -> the bytes Paddle's save_combine writes for them (sorted by name)."""
  parts = []
  for name in sorted(tensors):
    arr = np.asarray(tensors[name])
    desc = paddle_proto.TensorDesc(data_type=_code(arr.dtype),
                                   dims=[int(d) for d in arr.shape]).SerializeToString()
    parts += [struct.pack("<IQI", 0, 0, 0), struct.pack("<i", len(desc)), desc,
              np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()]
  return b"".join(parts)


def write(path: str | os.PathLike, tensors: Mapping[str, np.ndarray]) -> str:
  """Writes `dumps(tensors)` atomically; returns its sha256."""
  data = dumps(tensors)
  tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)
  return hashlib.sha256(data).hexdigest()
