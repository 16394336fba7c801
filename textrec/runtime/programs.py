"""Jitted inference functions, compiled once per input shape and kept in memory and on disk.

XLA:CPU takes seconds to compile each input shape. JAX's persistent compile cache skips the
compile in a later process but not the tracing and lowering that compute its key (seconds
per shape for a recognizer). Here each program is serialized right after its compile and a
later process loads it directly (scripts/bench_startup.py), under a key made of everything
the program depends on except the weights' values: textrec's code, the jax/jaxlib versions,
the device and CPU model, XLA_FLAGS, the conv implementation, the function's tag, the
variables' shapes and dtypes, the input shape, and which XLA:CPU kernels it uses (measured
once per machine, program and batch class: textrec.runtime.xla_cpu). Programs live in
`<cache root>/programs` (textrec.files.cache_root); the runtime setting `program_cache`
switches the disk part off.

  fwd = FlaxForward(fn, variables, tag="PP-OCRv4_det:det")  # fn(variables, x) -> y
  y = fwd(x)                                                # np.ndarray in, np.ndarray out
"""
from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import pickle
import threading
from typing import Any, Callable

import numpy as np

from textrec import files
from textrec.runtime import settings, xla_cpu

_LOCK = threading.Lock()  # one compile at a time: the persistent-cache hit counter is global
_HITS = [0]               # JAX persistent compile cache hits seen in this process


def cache_dir() -> pathlib.Path | None:
  """Where serialized programs live; None when the runtime setting program_cache is off."""
  if not settings.get().program_cache:
    return None
  base = files.cache_root()
  return pathlib.Path(base) / "programs"


@functools.cache
def code_fingerprint() -> str:
  """sha256 of textrec's own sources, Python and C++ (any change to them compiles anew)."""
  root = pathlib.Path(__file__).resolve().parents[1]
  h = hashlib.sha256()
  for p in sorted([*root.rglob("*.py"), *root.rglob("*.cc")]):
    h.update(str(p.relative_to(root)).encode())
    h.update(p.read_bytes())
  return h.hexdigest()


@functools.cache
def _listen_for_cache_hits() -> None:
  import jax  # pylint: disable=g-import-not-at-top

  def on_event(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
      _HITS[0] += 1

  jax.monitoring.register_event_listener(on_event)


def libs_key(tag: str, variables: Any, batch: int) -> str:
  """The key of the XLA:CPU kernel choice for `tag`'s program at this batch size
  (xla_cpu.batch_class)."""
  return f"{program_key(tag, variables)}-{xla_cpu.batch_class(batch).replace(' ', '')}"


def program_key(tag: str, variables: Any, shape: tuple[int, ...] | None = None,
                libs: str = "") -> str:
  """The on-disk key of `tag`'s program for input f32[shape] compiled with XLA:CPU variant
  `libs` (module doc); with shape None, the key of the program whatever its input shape."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top

  from textrec.runtime import native_depthwise  # pylint: disable=g-import-not-at-top  (JAX)

  dev = jax.devices()[0]
  leaves, tree = jax.tree_util.tree_flatten(variables)
  parts = [code_fingerprint(), jax.__version__, jaxlib.__version__, dev.platform,
           getattr(dev, "device_kind", ""), dev.client.platform_version, xla_cpu.cpu_model(),
           os.environ.get("XLA_FLAGS", ""),
           settings.current_conv_impl(dev.platform),
           # a program holding the native kernel loads only once it is registered
           native_depthwise.fingerprint() if native_depthwise.available() else "", tag, str(tree),
           repr([(tuple(l.shape), str(l.dtype)) for l in leaves])]
  if shape is not None:
    parts += [repr(tuple(shape)), libs]
  return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _load(path: pathlib.Path):
  from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top

  try:
    blob = pickle.loads(path.read_bytes())
    return serialize_executable.deserialize_and_load(*blob)
  except Exception:  # pylint: disable=broad-except  # unreadable or from another build
    path.unlink(missing_ok=True)
    return None


def _save(path: pathlib.Path, compiled) -> None:
  from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top

  try:
    blob = pickle.dumps(serialize_executable.serialize(compiled))
    files.atomic_write(path, blob)
  except Exception:  # pylint: disable=broad-except  # a read-only or full disk: memory only
    pass


class FlaxForward:
  """fn(variables, x) jitted, compiled per input shape (memory, then disk, then XLA)."""

  def __init__(self, fn: Callable, variables: dict[str, Any], tag: str):
    import jax  # pylint: disable=g-import-not-at-top

    self.variables = jax.device_put(variables)
    self.tag = tag
    self._jit = jax.jit(fn)
    self._compiled: dict[tuple[int, ...], Any] = {}
    self._from_disk: set[tuple[int, ...]] = set()

  @property
  def num_compiled(self) -> int:
    return len(self._compiled)

  def compiled(self, shape: tuple[int, ...]):
    """The program for x f32[shape]: kept, loaded from disk, or compiled (and saved)."""
    shape = tuple(int(s) for s in shape)
    prog = self._compiled.get(shape)
    if prog is not None:
      return prog
    import jax  # pylint: disable=g-import-not-at-top

    with _LOCK:
      prog = self._compiled.get(shape)
      if prog is not None:
        return prog
      where = cache_dir()
      key = libs_key(self.tag, self.variables, shape[0])
      libs = xla_cpu.choice(key, where)  # None: not yet measured on this machine
      path = None
      if where is not None and libs is not None:
        path = where / f"{program_key(self.tag, self.variables, shape, libs)}.bin"
      if path is not None and path.is_file():
        prog = _load(path)
        if prog is not None:
          self._from_disk.add(shape)
      if prog is None:
        _listen_for_cache_hits()
        hits = _HITS[0]
        spec = jax.ShapeDtypeStruct(shape, np.float32)
        lowered = self._jit.lower(self.variables, spec)
        if libs is None:
          x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
          prog, libs = xla_cpu.compile_measured(lowered, (self.variables, x), shape, key, where,
                                                self.tag)
        else:
          prog = lowered.compile(compiler_options=xla_cpu.VARIANTS[libs])
        # An executable JAX read from its own persistent cache does not serialize into one
        # that runs, so only fresh compiles are saved.
        if where is not None and _HITS[0] == hits:
          _save(where / f"{program_key(self.tag, self.variables, shape, libs)}.bin", prog)
      self._compiled[shape] = prog
      return prog

  def __call__(self, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    prog = self.compiled(x.shape)
    try:
      return np.asarray(prog(self.variables, x))
    except Exception:  # pylint: disable=broad-except
      if x.shape not in self._from_disk:
        raise
      # A saved program that loads but cannot run (e.g. from a different build): drop it.
      with _LOCK:
        self._from_disk.discard(x.shape)
        self._compiled.pop(x.shape, None)
        where = cache_dir()
        libs = xla_cpu.choice(libs_key(self.tag, self.variables, x.shape[0]), where)
        if where and libs:
          (where / f"{program_key(self.tag, self.variables, x.shape, libs)}.bin").unlink(
              missing_ok=True)
      return np.asarray(self.compiled(x.shape)(self.variables, x))
