"""`file` given as an http(s) URL (PaddleX's serving fetches any URL; a server that does is a
request forgery hole: it reaches whatever the server's network reaches). Here a URL is fetched
only when its host is in serve.allowed_url_hosts (empty: none), redirects only to listed hosts,
within a size limit and a timeout. A refused host is answered 403: the request is well formed,
this server's policy forbids it (422 stays for malformed requests)."""
from __future__ import annotations

import mimetypes
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Sequence

from textrec.serving.protocol import ApiError


def is_url(s: str) -> bool:
  """PaddleX's test: http:// or https:// with a host."""
  if not s.startswith(("http://", "https://")):
    return False
  u = urllib.parse.urlparse(s)
  return bool(u.scheme and u.netloc)


def parse_hosts(value: Any) -> tuple[str, ...]:
  """serve.allowed_url_hosts (a comma/space separated string or a list) -> lower-case
  entries, each "host" (any port) or "host:port" ("[v6]:port" for IPv6)."""
  items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
  return tuple(str(v).strip().lower() for v in items if str(v).strip())


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
  try:
    u = urllib.parse.urlparse(url)
    host, port = (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80)
  except ValueError:  # a port that is not a number
    return False
  for entry in allowed:
    e = urllib.parse.urlparse("//" + entry)
    try:
      if e.hostname == host and (e.port is None or e.port == port):
        return True
    except ValueError:
      continue
  return False


def kind_from_url(url: str) -> str | None:
  """PaddleX's inference for fileType null: "pdf" / "image" by the URL path's extension, or
  None."""
  mime = mimetypes.guess_type(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1])[0] or ""
  return "pdf" if mime == "application/pdf" else "image" if mime.startswith("image/") else None


def _short(url: str) -> str:
  return url if len(url) <= 80 else url[:77] + "..."


def _refuse(url: str, allowed: Sequence[str]) -> ApiError:
  host = urllib.parse.urlparse(url).netloc
  if not allowed:
    return ApiError(403, "file: URLs are not fetched by this server (serve.allowed_url_hosts is "
                         "empty); send the file as base64")
  return ApiError(403, f"file: host {host!r} is not in serve.allowed_url_hosts; send the file "
                       "as base64 or list the host")


class _ListedRedirects(urllib.request.HTTPRedirectHandler):
  """Follows a redirect only to a listed host."""

  def __init__(self, allowed: Sequence[str]):
    super().__init__()
    self.allowed = allowed

  def redirect_request(self, req, fp, code, msg, headers, newurl):
    newurl = urllib.parse.urljoin(req.full_url, newurl)
    if not (is_url(newurl) and host_allowed(newurl, self.allowed)):
      raise _refuse(newurl, self.allowed)
    return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, allowed: Sequence[str], max_bytes: int, timeout_s: float) -> bytes:
  """The bytes at `url` (blocking: run it in a thread). 403 for an unlisted host (or a
  redirect to one), 413 past max_bytes, 422 when the fetch fails or times out."""
  if not host_allowed(url, allowed):
    raise _refuse(url, allowed)
  opener = urllib.request.build_opener(_ListedRedirects(allowed))
  try:
    with opener.open(urllib.request.Request(url, headers={"User-Agent": "textrec"}),
                     timeout=timeout_s) as resp:
      declared = resp.headers.get("Content-Length")
      if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"file: {_short(url)} holds {int(declared)} bytes, over the limit "
                            f"of {max_bytes} (serve.max_body_bytes)")
      data = resp.read(max_bytes + 1)
  except urllib.error.HTTPError as e:
    raise ApiError(422, f"file: {_short(url)} answered HTTP {e.code}") from None
  except (socket.timeout, TimeoutError):
    raise ApiError(422, f"file: {_short(url)} did not answer within {timeout_s:g} s "
                        "(serve.url_timeout_s)") from None
  except (urllib.error.URLError, OSError, ValueError) as e:
    reason = getattr(e, "reason", e)
    if isinstance(reason, (socket.timeout, TimeoutError)):
      raise ApiError(422, f"file: {_short(url)} did not answer within {timeout_s:g} s "
                          "(serve.url_timeout_s)") from None
    raise ApiError(422, f"file: fetching {_short(url)} failed ({reason})") from None
  if len(data) > max_bytes:
    raise ApiError(413, f"file: {_short(url)} holds over {max_bytes} bytes, the limit "
                        "(serve.max_body_bytes)")
  if not data:
    raise ApiError(422, f"file: {_short(url)} answered no bytes")
  return data
