"""Transparent huge pages for XLA:CPU's per-run buffers (Linux, glibc >= 2.35).

XLA:CPU allocates each run's temporary buffer afresh (gigabytes for a train step) and glibc
maps it with mmap and unmaps it on free, so every step faults all of it in again, 4 KiB at a
time. With glibc's tunable `glibc.malloc.hugetlb=1` malloc asks for transparent huge pages
(madvise), which on kernels whose THP mode is `madvise` avoids most of those faults
(`scripts/bench_train.py --hugepages` measures the effect).

Glibc reads tunables only at process start, so the CLI re-executes itself once with the
tunable added (`reexec_with_hugepages`); the runtime setting `hugepages`
(`--config.runtime.hugepages=False`, or TEXTREC_HUGEPAGES=0) opts out. Library users can
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1 themselves.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Mapping

from textrec.runtime import settings

TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"


def thp_mode(path: str = THP_MODE_FILE) -> str:
  """The kernel's THP mode ("always" | "madvise" | "never"), "" when unknown."""
  try:
    with open(path, encoding="ascii") as f:
      text = f.read()
  except OSError:
    return ""
  return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else ""


def useful(path: str = THP_MODE_FILE) -> bool:
  """Whether the tunable changes anything here: glibc >= 2.35 and THP mode `madvise` (with
  `always` every large mapping gets huge pages already, with `never` none can)."""
  libc, version = platform.libc_ver()
  if libc != "glibc":
    return False
  try:
    major, minor = (int(v) for v in version.split(".")[:2])
  except ValueError:
    return False
  return (major, minor) >= (2, 35) and thp_mode(path) == "madvise"


def with_hugepages(env: Mapping[str, str]) -> dict[str, str]:
  """A copy of `env` whose GLIBC_TUNABLES has malloc's hugetlb tunable (others kept)."""
  out = dict(env)
  tunables = [t for t in out.get("GLIBC_TUNABLES", "").split(":") if t]
  if not any(t.startswith("glibc.malloc.hugetlb=") for t in tunables):
    tunables.append(TUNABLE)
  out["GLIBC_TUNABLES"] = ":".join(tunables)
  return out


def _wanted(argv: list[str]) -> bool:
  """The `hugepages` setting, with a --config.runtime.hugepages=VALUE flag applied."""
  wanted = settings.get().hugepages
  for a in argv:
    if a.startswith("--config.runtime.hugepages="):
      wanted = a.split("=", 1)[1].strip().lower() not in ("false", "0", "no")
  return wanted


def reexec_with_hugepages() -> None:
  """Replaces this process with the same command line plus the tunable, when `useful()`,
  not yet set, and the runtime setting `hugepages` is on (the environment's default, or
  `--config.runtime.hugepages=...` on the command line). Call before importing JAX."""
  env = os.environ
  if (not _wanted(sys.argv[1:]) or env.get("TEXTREC_REEXECED")
      or "glibc.malloc.hugetlb=" in env.get("GLIBC_TUNABLES", "") or not useful()):
    return
  new_env = with_hugepages(env)
  new_env["TEXTREC_REEXECED"] = "1"  # never twice, whatever glibc makes of the tunable
  try:
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], new_env)
  except OSError:
    return  # keep running as we are
