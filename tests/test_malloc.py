"""textrec.runtime.malloc: serve's cap on glibc's malloc arenas and its trimming take effect."""
from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import ml_collections as mlc
import pytest

from configs import common
from textrec.errors import UsageError
from textrec.serving import server

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")

# 8 threads alive at once, each allocating: glibc gives each its own arena unless capped.
THREADS = textwrap.dedent("""
    import os, sys, threading
    from textrec.runtime import malloc
    if sys.argv[1] != "0":
      print("took", malloc.limit_arenas(int(sys.argv[1])))
    barrier = threading.Barrier(8)
    def work():
      kept = [bytearray(4096) for _ in range(64)]
      barrier.wait()
    ts = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("arenas", malloc.arena_count(), "env", os.environ.get("MALLOC_ARENA_MAX"))
""")


def _arenas(cap: int) -> tuple[int, str]:
  out = subprocess.run([sys.executable, "-c", THREADS, str(cap)], capture_output=True,
                       text=True, check=True, timeout=60).stdout.split()
  assert out[-4] == "arenas", out
  return int(out[-3]), out[-1]


@glibc_only
def test_cap_holds_with_many_threads():
  uncapped, env = _arenas(0)
  assert uncapped > 2 and env == "None"  # glibc's default: one arena per thread here
  capped, env = _arenas(2)
  assert capped <= 2 and env == "2"  # and processes started from it read MALLOC_ARENA_MAX


# 100 MB freed inside a thread's arena, one block kept above it: glibc keeps the pages until
# trimmed, then the trimming thread hands them back.
TRIM = textwrap.dedent("""
    import threading, time
    from textrec.runtime import malloc
    def rss():
      with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS")) / 1024
    out = {}
    def work():
      blocks = [bytearray(4000) for _ in range(25000)]
      keep = blocks[-1]
      del blocks
      out["freed"] = rss()
      stop = malloc.start_trimming(0.05)
      time.sleep(0.5)
      stop()
      out["trimmed"] = rss()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    print(out["freed"], out["trimmed"])
""")


@glibc_only
def test_trimming_hands_freed_pages_back():
  out = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True,
                       check=True, timeout=60).stdout.split()
  freed, trimmed = float(out[-2]), float(out[-1])
  assert trimmed < freed - 50, (freed, trimmed)


@pytest.mark.parametrize("key", ["malloc_arena_max", "malloc_trim_s"])
def test_serve_defaults_and_bad_values(key):
  s = common.serve_section()
  assert (s.malloc_arena_max, s.malloc_trim_s) == (2, 5.0)
  bad = mlc.ConfigDict(dict(s))
  bad[key] = -1
  with pytest.raises(UsageError, match=rf"^serve\.{key} must be >= 0"):
    server.limits_of(bad)
