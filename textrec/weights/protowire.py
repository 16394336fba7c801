"""The protobuf wire format, just enough to read Paddle's ProgramDesc and TensorDesc without
the protobuf package or Paddle's generated classes (schema: Paddle's `framework.proto`).

`fields(buf)` yields (field number, wire type, value): varints as int, length-delimited
fields as bytes (a nested message or a string: the caller knows which), fixed32/64 as bytes.
"""
from __future__ import annotations

from typing import Iterator

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
  """Bytes that are not a protobuf message."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
  """-> (value, position after it)."""
  out = shift = 0
  while True:
    if pos >= len(buf):
      raise WireError(f"varint runs past the end at byte {pos}")
    b = buf[pos]
    pos += 1
    out |= (b & 0x7F) << shift
    if b < 0x80:
      return out, pos
    shift += 7
    if shift > 63:
      raise WireError(f"varint longer than 10 bytes at byte {pos}")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
  """Every field of one message, in order."""
  pos, end = 0, len(buf)
  while pos < end:
    key, pos = read_varint(buf, pos)
    num, wire = key >> 3, key & 7
    if wire == VARINT:
      val, pos = read_varint(buf, pos)
      yield num, wire, val
    elif wire == LEN:
      n, pos = read_varint(buf, pos)
      if pos + n > end:
        raise WireError(f"field {num}: {n} bytes announced at byte {pos}, {end - pos} left")
      yield num, wire, buf[pos:pos + n]
      pos += n
    elif wire in (FIXED64, FIXED32):
      n = 8 if wire == FIXED64 else 4
      if pos + n > end:
        raise WireError(f"field {num}: truncated fixed{n * 8} at byte {pos}")
      yield num, wire, buf[pos:pos + n]
      pos += n
    else:
      raise WireError(f"field {num}: unsupported wire type {wire} at byte {pos}")


def signed(v: int) -> int:
  """A varint read as int64 (negative numbers are 10-byte two's complement)."""
  return v - (1 << 64) if v >= 1 << 63 else v


def encode_varint(v: int) -> bytes:
  v &= (1 << 64) - 1
  out = bytearray()
  while True:
    b = v & 0x7F
    v >>= 7
    if v:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def encode_field(num: int, value: int | bytes) -> bytes:
  """A varint (int) or length-delimited (bytes) field."""
  if isinstance(value, bytes):
    return encode_varint(num << 3 | LEN) + encode_varint(len(value)) + value
  return encode_varint(num << 3 | VARINT) + encode_varint(value)
