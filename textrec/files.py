"""Where textrec keeps what it builds, and how it writes files so no reader sees half of one.

Every write of a file or directory that another process (or a later run) may read goes
through `atomic_path` / `atomic_write` / `atomic_dir`: the content is written beside its
final place under a temporary name and renamed into place, which POSIX makes atomic.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator


def cache_root() -> str:
  """Where textrec keeps what it builds once per machine: `$TEXTREC_CACHE`, default
  `~/.cache/textrec` (official weights, compiled programs, the native kernel, demo data)."""
  return os.path.expanduser(os.environ.get("TEXTREC_CACHE") or
                            os.path.join("~", ".cache", "textrec"))


def user_path(path: str | os.PathLike) -> str:
  """A path as a user wrote it, with `~` expanded."""
  return os.path.expanduser(os.fspath(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
  """Yields a temporary path beside `path`; when the block ends without error the file
  written there replaces `path` in one step (else it is removed)."""
  path = os.fspath(path)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(path)}.tmp-",
                             suffix=suffix)
  os.close(fd)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
  """Writes `data` to `path` atomically (module doc)."""
  with atomic_path(path) as tmp:
    if isinstance(data, str):
      with open(tmp, "w", encoding=encoding) as f:
        f.write(data)
    else:
      with open(tmp, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, complete: str | None = None) -> Iterator[str]:
  """Yields a temporary directory beside `path` to fill; when the block ends without error
  it takes `path`'s place (an existing directory there is replaced). `complete`: the name of
  a file whose presence marks a finished directory, so that losing a race to a concurrent
  writer that finished first is not an error."""
  path = os.fspath(path)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
  try:
    yield tmp
    if os.path.lexists(path):  # stale or incomplete: moved aside, then removed
      trash = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
      os.rename(path, os.path.join(trash, "old"))
      shutil.rmtree(trash, ignore_errors=True)
    try:
      os.rename(tmp, path)
    except OSError:
      if not (complete and os.path.exists(os.path.join(path, complete))):
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: the cache key
  del size, mtime_ns
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def sha256(path: str | os.PathLike) -> str:
  """sha256 of the file at `path` (remembered while the file is unchanged)."""
  st = os.stat(path)
  return _sha256(os.path.realpath(path), st.st_size, st.st_mtime_ns)


def read_record(path: str | os.PathLike | None) -> dict[str, Any]:
  """A per-machine JSON record (a dict); {} when absent, unreadable or not a dict."""
  if path is None:
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
    return data if isinstance(data, dict) else {}
  except (OSError, ValueError):
    return {}


def add_to_record(path: str | os.PathLike, key: str, entry: Any) -> None:
  """Sets `key` in the JSON record at `path` (read-modify-write, atomic replace; callers hold
  a lock). A read-only or full disk is not an error: the caller keeps its choice in memory."""
  try:
    data = read_record(path)
    data[key] = entry
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True))
  except OSError:
    pass
