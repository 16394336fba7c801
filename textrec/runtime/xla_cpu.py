"""Which XLA:CPU kernels run an inference program, chosen by timing it on this machine.

XLA:CPU hands dots, convolutions and some element-wise fusions to the YNNPACK library (jax
0.10's default), or, with YNNPACK off, runs them with its own emitted loops and Eigen. Which
is faster depends on the CPU, the program and the batch size (`scripts/bench_runtimes.py
--compare_libs` prints both for the four recognizers; on one machine SVTRv2 ran faster with
YNNPACK at batch 1 and without it at batch 6, in two runs). So the first time a program (a
`FlaxForward` tag with its variables' shapes) compiles on a machine for one image, and the
first time for a larger batch (`batch_class`), both variants are compiled and timed on that
input, alternating, and the faster is recorded in `$TEXTREC_CACHE/programs/xla_cpu_libs.json`
under a key that holds the CPU model, the jax versions and XLA_FLAGS; every later compile of
that program and batch class, for any input shape, in any process, uses the record. The
outputs agree to float32 round-off either way. Train steps are not affected (they compile with
XLA's defaults).

The runtime setting `xla_cpu_libs` (textrec.runtime.settings) = default | ynn_off forces one
variant (auto, the default, measures); off the CPU, programs always compile with XLA's
defaults.
"""
from __future__ import annotations

import functools
import platform
import hashlib
import pathlib
import statistics
import time
from typing import Any, Callable

from textrec import files
from textrec.runtime import settings

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},                                         # XLA's choice: YNNPACK
    "ynn_off": {"xla_cpu_experimental_ynn_fusion_type": ""},  # XLA's own kernels and Eigen
}
_MEMORY: dict[str, str] = {}  # choices made in this process (all of them when not on disk)


@functools.cache
def cpu_model() -> str:
  """The CPU's model name and a digest of its feature flags (part of every key: programs
  are compiled for the host's ISA, and virtual machines often show only "AMD EPYC")."""
  name, flags = "", ""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      if key.strip() == "model name" and not name:
        name = value.strip()
      elif key.strip() == "flags" and not flags:
        flags = hashlib.sha256(value.strip().encode()).hexdigest()[:8]
  except OSError:
    pass
  if not name:
    name = platform.processor() or platform.machine()
  return f"{name} [{flags}]" if flags else name


def batch_class(batch: int) -> str:
  """The batch sizes that share one kernel choice: one image, or more."""
  return "batch 1" if batch == 1 else "batch > 1"


def forced() -> str | None:
  """The variant the runtime setting `xla_cpu_libs` forces, or None for auto."""
  v = settings.check(settings.get()).xla_cpu_libs
  return None if v == "auto" else v


def _on_cpu() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.default_backend() == "cpu"


def _record_file(where: pathlib.Path | None) -> pathlib.Path | None:
  return where / "xla_cpu_libs.json" if where is not None else None


def choice(key: str, where: pathlib.Path | None) -> str | None:
  """The variant for program `key`: forced, XLA's default off the CPU, recorded, or None
  (not measured yet on this machine)."""
  f = forced()
  if f is not None:
    return f
  if not _on_cpu():
    return "default"
  if key in _MEMORY:
    return _MEMORY[key]
  entry = files.read_record(_record_file(where)).get(key)
  if isinstance(entry, dict) and entry.get("choice") in VARIANTS:
    _MEMORY[key] = entry["choice"]
    return entry["choice"]
  return None


def _record(key: str, where: pathlib.Path | None, entry: dict[str, Any]) -> None:
  """Adds `entry` under `key` (read-modify-write, atomic replace; callers hold a lock)."""
  _MEMORY[key] = entry["choice"]
  path = _record_file(where)
  if path is None:
    return
  files.add_to_record(path, key, entry)  # a read-only disk: the choice stays in memory


def fastest(runs: dict[str, Callable[[], Any]], rounds: int = 5,
            budget_s: float = 3.0) -> tuple[str, dict[str, float]]:
  """Times each of `runs` -> (name of the fastest, {name: median ms}).

  One first call each; when the slowest of those took over a quarter of `budget_s`, they
  decide (a big batch's call takes seconds: its first-call overhead is small beside that).
  Otherwise alternating rounds of one call each, at least 3 rounds, at most `rounds` or
  until `budget_s` is spent, compared by median."""
  import jax  # pylint: disable=g-import-not-at-top

  first = {}
  for n, run in runs.items():
    t = time.perf_counter()
    jax.block_until_ready(run())
    first[n] = time.perf_counter() - t
  if max(first.values()) > budget_s / 4:
    ms = {n: 1e3 * v for n, v in first.items()}
    return min(ms, key=ms.get), ms
  return alternating_rounds({n: (lambda run=run: jax.block_until_ready(run()))
                             for n, run in runs.items()}, rounds, budget_s)


def alternating_rounds(runs: dict[str, Callable[[], Any]], rounds: int,
                       budget_s: float) -> tuple[str, dict[str, float]]:
  """-> (name of the fastest of `runs`, {name: median ms}): alternating rounds of one call
  each (a call returns when its work is done), at least 3, at most `rounds` or until
  `budget_s` is spent."""
  ts: dict[str, list[float]] = {n: [] for n in runs}
  start = time.perf_counter()
  for r in range(rounds):
    if r >= 3 and time.perf_counter() - start > budget_s:
      break
    for n, run in runs.items():
      t = time.perf_counter()
      run()
      ts[n].append(time.perf_counter() - t)
  ms = {n: 1e3 * statistics.median(v) for n, v in ts.items()}
  return min(ms, key=ms.get), ms


def compile_measured(lowered, args: tuple, shape: tuple[int, ...], key: str,
                     where: pathlib.Path | None, tag: str = "") -> tuple[Any, str]:
  """Compiles `lowered` with each variant, times them on `args`, records the fastest under
  `key` and returns (its program, its name)."""
  progs = {n: lowered.compile(compiler_options=o) for n, o in VARIANTS.items()}
  best, ms = fastest({n: functools.partial(p, *args) for n, p in progs.items()})
  _record(key, where, {"choice": best, "ms": {n: round(v, 3) for n, v in ms.items()},
                       "shape": list(shape), "tag": " ".join(tag.split())[:80], "cpu": cpu_model(),
                       "date": time.strftime("%Y-%m-%d")})
  return progs[best], best
