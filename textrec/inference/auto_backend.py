"""backend="auto": the fastest runtime for a model, timed once per machine and recorded.

The first time a model (its ONNX file's sha256) is loaded with backend auto on a machine, each
candidate runtime that can run it is loaded, called once (compiles, warms up), then timed on
one representative input in alternating rounds; the median decides. The candidates are the
runtimes that read the ONNX file (textrec.inference.runtimes: onnxruntime, and openvino when
installed, at the precision asked for). JAX is not one: an export holds no weights JAX reads
(an export of the official weights could run them, but an exported model is meant to run
without JAX; backend="jax" does it on request), and for every other kind of weights JAX is
the one runtime, so auto means jax there. The winner is recorded in
`<cache root>/programs/backends.json` (beside textrec.runtime.xla_cpu's kernel choice, with the
same kind of key: CPU model, runtime versions), one short line on stderr says what was chosen,
and every later load of that model with that input signature, in any process, takes the
record without timing. The runtime setting program_cache off keeps choices in memory only.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import pathlib
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

from textrec import files
from textrec.errors import MissingExtraError
from textrec.runtime import programs, xla_cpu

RECORD_FILE = "backends.json"
_LOCK = threading.Lock()
_MEMORY: dict[str, str] = {}

Forward = Callable[[np.ndarray], np.ndarray]


def _version(dist: str) -> str:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return "-"


# Bumped when a runner changes how it runs a file (2: OpenVINO reads onnxruntime's rewrite),
# so earlier records are timed anew.
RUNNERS = 2


def record_key(onnx_path: str, shape: tuple[int, ...], candidates: list[str]) -> str:
  """The model (sha256 of its ONNX file), the timed input's shape, the candidates with their
  versions, how textrec runs them (RUNNERS), and the CPU."""
  versions = ",".join(f"{c}={_version('jax' if c == 'jax' else c)}" for c in sorted(candidates))
  sig = (f"{files.sha256(onnx_path)[:16]} {list(shape)} {versions} {RUNNERS} "
         f"{xla_cpu.cpu_model()}")
  return hashlib.sha256(sig.encode()).hexdigest()[:24]


def record_file() -> pathlib.Path | None:
  where = programs.cache_dir()
  return where / RECORD_FILE if where is not None else None


def recorded(key: str) -> str | None:
  """The backend recorded for `key` (in this process or on disk), or None."""
  if key in _MEMORY:
    return _MEMORY[key]
  entry = files.read_record(record_file()).get(key)
  return entry.get("choice") if isinstance(entry, dict) else None


def _record(key: str, entry: dict[str, Any]) -> None:
  _MEMORY[key] = entry["choice"]
  path = record_file()
  if path is None:
    return
  files.add_to_record(path, key, entry)  # a read-only disk: the choice stays in memory


def fastest(runs: dict[str, Forward], x: np.ndarray, rounds: int = 7,
            budget_s: float = 4.0) -> tuple[str, dict[str, float]]:
  """-> (name of the fastest of `runs` on x, {name: median ms}): one warm-up call each, then
  alternating rounds of one call each, at least 3, at most `rounds` or until `budget_s`."""
  for run in runs.values():
    run(x)
  return xla_cpu.alternating_rounds({n: (lambda run=run: run(x)) for n, run in runs.items()},
                                    rounds, budget_s)


def choose(onnx_path: str, candidates: dict[str, Callable[[], Forward]], example: np.ndarray,
           label: str) -> tuple[str, Forward]:
  """-> (backend, its forward): the recorded choice for this model and input signature, or
  the fastest of `candidates` (name -> a loader of its forward, all taking `example`), timed
  now and recorded. A candidate whose package is missing is left out."""
  with _LOCK:
    key = record_key(onnx_path, example.shape, list(candidates))
    best = recorded(key)
    if best in candidates:
      try:
        return best, candidates[best]()
      except (ImportError, MissingExtraError):  # uninstalled since: measure again
        pass
    runs: dict[str, Forward] = {}
    for name, load in candidates.items():
      try:
        runs[name] = load()
      except (ImportError, MissingExtraError):
        continue
    best, ms = fastest(runs, example) if len(runs) > 1 else (next(iter(runs)), {})
    _record(key, {"choice": best, "ms": {n: round(v, 3) for n, v in ms.items()},
                  "model": label, "shape": list(example.shape), "cpu": xla_cpu.cpu_model(),
                  "date": time.strftime("%Y-%m-%d")})
    times = ", ".join(f"{n} {v:.1f} ms" for n, v in sorted(ms.items(), key=lambda kv: kv[1]))
    print(f"backend auto: {best} for {label} ({times or 'the only one installed'}; "
          f"input {list(example.shape)}; recorded for this machine)", file=sys.stderr)
    return best, runs[best]
