"""A small client for textrec's server (standard library only; one keep-alive connection).

  from textrec.serving.client import Client
  c = Client("http://127.0.0.1:8080")
  c.recognize(["crop1.png", "crop2.png"])   # -> [{"rec_text": ..., "rec_score": ...}, ...]
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.parse
from typing import Any, Sequence

import numpy as np


class ServerError(Exception):
  """An answer with errorCode != 0: `.status`, `.error_code`, `.message`, `.log_id`."""

  def __init__(self, status: int, body: dict[str, Any]):
    self.status, self.error_code = status, body.get("errorCode", status)
    self.message, self.log_id = body.get("errorMsg", ""), body.get("logId", "")
    super().__init__(f"HTTP {status}: {self.message}")


def encode_image(image: str | os.PathLike | bytes | np.ndarray) -> str:
  """A path, encoded bytes or a BGR array (sent as PNG) -> base64 text."""
  if isinstance(image, np.ndarray):
    import cv2  # pylint: disable=g-import-not-at-top

    ok, buf = cv2.imencode(".png", image)
    if not ok:
      raise ValueError(f"cannot encode an array of shape {image.shape} as PNG")
    data = buf.tobytes()
  elif isinstance(image, (bytes, bytearray)):
    data = bytes(image)
  else:
    with open(image, "rb") as f:
      data = f.read()
  return base64.b64encode(data).decode("ascii")


class Client:
  """Talks to `http://host:port` over one kept-alive connection. `retries`: times a request
  is re-sent on a fresh connection when the old one was closed under it (requests are
  idempotent); 0 shows every connection error."""

  def __init__(self, url: str = "http://127.0.0.1:8080", timeout: float = 60.0,
               retries: int = 1):
    u = urllib.parse.urlsplit(url)
    self.host, self.port, self.timeout = u.hostname or "127.0.0.1", u.port or 80, timeout
    self.retries = int(retries)
    self._conn: http.client.HTTPConnection | None = None

  def close(self) -> None:
    if self._conn is not None:
      self._conn.close()
      self._conn = None

  def __enter__(self) -> "Client":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def request(self, method: str, path: str, body: bytes | None = None
              ) -> tuple[int, dict[str, str], bytes]:
    """One raw request -> (status, headers, body); raises OSError on connection errors."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    for attempt in range(self.retries + 1):
      if self._conn is None:
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
      try:
        self._conn.request(method, path, body=body, headers=headers)
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.getheader("connection", "").lower() == "close":
          self.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
      except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        self.close()
        if attempt == self.retries:
          raise
    raise AssertionError("unreachable")

  def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POSTs JSON; returns `result`, raises ServerError for an error answer."""
    status, _, data = self.request("POST", path, json.dumps(payload).encode())
    body = json.loads(data)
    if status != 200 or body.get("errorCode"):
      raise ServerError(status, body)
    return body["result"]

  def recognize(self, images: Sequence[str | os.PathLike | bytes | np.ndarray]
                ) -> list[dict[str, Any]]:
    """Crops -> [{"rec_text", "rec_score"}] in order."""
    return self.call("/text-recognition", {"images": [encode_image(i) for i in images]})["texts"]

  def ocr(self, image: str | os.PathLike | bytes | np.ndarray) -> dict[str, Any]:
    """A whole image -> the OCR pipeline's result (rec_texts, rec_scores, rec_polys, ...)."""
    res = self.call("/ocr", {"file": encode_image(image), "fileType": 1, "visualize": False})
    return res["ocrResults"][0]["prunedResult"]

  def health(self) -> bool:
    try:
      return self.request("GET", "/health")[0] == 200
    except OSError:
      self.close()
      return False
