"""glibc malloc's arena limit and trimming, for long-running servers (Linux).

glibc gives each new thread its own malloc arena, up to 8 per core. A server's threads
(uvicorn's thread pool, XLA:CPU's and onnxruntime's workers, OpenCV's) each free memory into
their own arena, where it stays mapped: the process's RSS creeps up with the traffic mix
instead of staying flat (`scripts/load_test.py --only=ocr_soak` measures it).
`limit_arenas(n)` caps the arenas for this process with mallopt(M_ARENA_MAX) and, through
MALLOC_ARENA_MAX, for the processes it starts (serve.workers). glibc fixes the cap once 8
arenas exist, so call it before JAX, onnxruntime or OpenCV start their threads.
`--config.serve.malloc_arena_max` sets n for `--config.mode=serve` (0: glibc's default).

Memory freed inside an arena stays in the process's RSS until glibc trims it, which it does
only at the top of the main heap. `start_trimming(s)` calls malloc_trim every `s` seconds
from a daemon thread, handing every arena's free pages back to the kernel
(`--config.serve.malloc_trim_s`, 0: never).
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import threading
from typing import Callable

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
ENV = "MALLOC_ARENA_MAX"


@functools.cache
def _libc():
  """glibc's handle, once per process (platform.libc_ver reads the interpreter's binary);
  None elsewhere."""
  if platform.libc_ver()[0] != "glibc":
    return None
  try:
    return ctypes.CDLL(None)
  except OSError:
    return None


def limit_arenas(n: int) -> bool:
  """At most `n` malloc arenas in this process and its children; n <= 0 changes nothing.
  Returns whether this process's glibc took the limit (False off glibc)."""
  if n <= 0:
    return False
  os.environ[ENV] = str(n)  # processes started from here read it at their start
  libc = _libc()
  return bool(libc is not None and libc.mallopt(M_ARENA_MAX, int(n)) == 1)


def arena_count() -> int | None:
  """How many malloc arenas this process has now (glibc's malloc_info); None off glibc."""
  libc = _libc()
  if libc is None:
    return None
  libc.open_memstream.restype = ctypes.c_void_p
  libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.POINTER(ctypes.c_size_t)]
  libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
  libc.fclose.argtypes = [ctypes.c_void_p]
  buf, size = ctypes.c_void_p(), ctypes.c_size_t()
  stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
  if not stream:
    return None
  try:
    libc.malloc_info(0, stream)
  finally:
    libc.fclose(stream)
  text = ctypes.string_at(buf, size.value).decode("ascii", "replace")
  libc.free.argtypes = [ctypes.c_void_p]
  libc.free(buf)
  return len(re.findall(r"<heap nr=", text))


def trim() -> bool:
  """Hands free heap pages back to the kernel (malloc_trim(0)); whether any were (False off
  glibc)."""
  libc = _libc()
  return bool(libc is not None and libc.malloc_trim(0))


def start_trimming(interval_s: float) -> Callable[[], None]:
  """trim() every `interval_s` seconds from a daemon thread (interval_s <= 0 or off glibc:
  nothing); returns a function that stops it."""
  if interval_s <= 0 or _libc() is None:
    return lambda: None
  stop = threading.Event()

  def loop() -> None:
    while not stop.wait(interval_s):
      trim()

  thread = threading.Thread(target=loop, name="malloc_trim", daemon=True)
  thread.start()

  def stop_trimming() -> None:
    stop.set()
    thread.join()

  return stop_trimming
