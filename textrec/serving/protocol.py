"""PaddleX serving's JSON protocol: the answer envelope, errors as statuses, reading a request.

Every JSON answer carries `logId`, `errorCode` (0 on success, else the HTTP status) and
`errorMsg`; a success also carries `result`.
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Sequence

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse

from textrec.inference import inputs


class ApiError(Exception):
  """An answer other than success: HTTP status and one line saying what is wrong."""

  def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
    super().__init__(message)
    self.status, self.message, self.headers = status, message, headers or {}


KIND = {400: "bad_input", 403: "forbidden", 413: "too_large", 422: "invalid_request",
        500: "inference", 501: "not_implemented", 503: "overloaded", 504: "timeout"}


def answer(status: int, msg: str, result: Any = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
  body = {"logId": str(uuid.uuid4()), "errorCode": 0 if status == 200 else status,
          "errorMsg": msg}
  if result is not None:
    body["result"] = result
  return JSONResponse(body, status_code=status, headers=headers)


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
  """The body as a JSON object; 413 past `max_bytes` (read on to a bound, so the client
  sees the answer rather than a reset), 400 empty or not JSON, 422 not an object."""
  declared = request.headers.get("content-length")
  if declared is not None and declared.isdigit() and int(declared) > 8 * max_bytes:
    raise ApiError(413, f"request body of {int(declared)} bytes exceeds the limit of "
                        f"{max_bytes} (serve.max_body_bytes)")
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size <= max_bytes:
      chunks.append(chunk)
    elif size > 8 * max_bytes:
      break
  if size > max_bytes:
    raise ApiError(413, f"request body of {size}{'+' if size > 8 * max_bytes else ''} bytes "
                        f"exceeds the limit of {max_bytes} (serve.max_body_bytes)")
  if not size:
    raise ApiError(400, 'empty request body; expected JSON such as {"image": "<base64>"}')
  try:
    body = json.loads(b"".join(chunks))
  except (ValueError, UnicodeDecodeError) as e:
    raise ApiError(400, f"request body is not valid JSON ({e})") from None
  if not isinstance(body, dict):
    raise ApiError(422, f"expected a JSON object, got {type(body).__name__}")
  return body


def check_fields(body: dict[str, Any], allowed: Sequence[str], endpoint: str) -> None:
  unknown = sorted(set(body) - set(allowed))
  if unknown:
    raise ApiError(422, f"unknown field(s) {', '.join(map(repr, unknown))}; {endpoint} takes "
                        f"{', '.join(map(repr, allowed))}")


def b64_bytes(data: Any, name: str) -> bytes:
  """A base64 string (or data: URL) -> its bytes; 422 not a string, 400 not base64 / empty."""
  if not isinstance(data, str):
    raise ApiError(422, f"{name} must be a base64 string, got {type(data).__name__}")
  if data.startswith(("http://", "https://")):
    raise ApiError(422, f"{name}: URLs are not fetched; send the image as base64")
  if data.startswith("data:"):
    data = data.partition(",")[2]
  try:
    buf = base64.b64decode(data, validate=True)
  except (binascii.Error, ValueError) as e:
    raise ApiError(400, f"{name}: not valid base64 ({e})") from None
  if not buf:
    raise ApiError(400, f"{name}: empty (no bytes after base64 decoding)")
  return buf


def decode_image_bytes(buf: bytes, name: str, max_pixels: int) -> np.ndarray:
  """Encoded image bytes -> BGR uint8; the pixel count is checked from the header before
  anything is decoded (decompression bombs cost nothing)."""
  header = inputs.header_pixels(buf)
  if header is None:
    hint = " (this is a PDF: send fileType 0)" if buf.startswith(b"%PDF-") else ""
    raise ApiError(400, f"{name}: not an image (unrecognised format or invalid header; send "
                        f"PNG, JPEG, BMP, TIFF or WebP){hint}")
  pixels, size = header
  if pixels == 0:
    raise ApiError(400, f"{name}: empty image ({size})")
  if pixels > max_pixels:
    raise ApiError(413, f"{name}: a {size} image exceeds the limit of {max_pixels} pixels "
                        "(serve.max_image_pixels); refused before decoding")
  img, err = inputs.decode_image(buf, name)
  if err is not None:
    raise ApiError(400, err)
  return img


def decode_b64_image(data: Any, name: str, max_pixels: int) -> np.ndarray:
  """A base64 string (or data: URL) -> BGR uint8 (b64_bytes, then decode_image_bytes)."""
  return decode_image_bytes(b64_bytes(data, name), name, max_pixels)


def jsonable(x: Any) -> Any:
  """numpy arrays and scalars inside dicts/lists -> plain JSON types."""
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, np.generic):
    return x.item()
  return x
