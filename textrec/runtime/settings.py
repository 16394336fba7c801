"""The runtime's knobs, read in one place.

A process starts from the defaults below, which environment variables can change for library
users (`TEXTREC_PROGRAM_CACHE=0`, `TEXTREC_XLA_CPU_LIBS=ynn_off`, `TEXTREC_NATIVE_KERNELS=0`,
`TEXTREC_HUGEPAGES=0`); the CLI then applies its config's `runtime` section
(`--config.runtime.KEY=VALUE`, configs/common.py) with `configure`. Code reads them with
`get()`.

Two trace-time contexts live here too, since they decide what a traced program contains:
`conv_impl(name)` (how Conv2D lowers) and `native_kernels_off()` (no custom calls, for
export and cost analysis). Both are context variables: they hold per thread and per task.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from typing import Any, Iterator, Mapping

XLA_CPU_LIBS = ("auto", "default", "ynn_off")
CONV_IMPLS = ("auto", "fast", "xla")


@dataclasses.dataclass(frozen=True)
class Settings:
  """program_cache: keep compiled inference programs on disk (`<cache>/programs`);
  compile_cache: JAX's persistent compile cache (`<cache>/jax`);
  xla_cpu_libs: XLA:CPU kernels for inference, "auto" (timed once per machine and program),
    "default" (YNNPACK) or "ynn_off" (XLA's own and Eigen);
  native_kernels: the C++ depthwise conv for XLA:CPU inference;
  hugepages: the CLI re-executes itself with transparent huge pages for malloc."""
  program_cache: bool = True
  compile_cache: bool = True
  xla_cpu_libs: str = "auto"
  native_kernels: bool = True
  hugepages: bool = True


def _flag(env: Mapping[str, str], name: str) -> bool:
  return env.get(name, "1").strip() != "0"


def from_env(env: Mapping[str, str] = os.environ) -> Settings:
  """The defaults, as the environment variables in the module doc change them."""
  return Settings(program_cache=_flag(env, "TEXTREC_PROGRAM_CACHE"),
                  xla_cpu_libs=env.get("TEXTREC_XLA_CPU_LIBS", "auto").strip() or "auto",
                  native_kernels=_flag(env, "TEXTREC_NATIVE_KERNELS"),
                  hugepages=_flag(env, "TEXTREC_HUGEPAGES"))


_CURRENT = [from_env()]


def check(s: Settings) -> Settings:
  """`s`, or ValueError naming the field that is out of range."""
  if s.xla_cpu_libs not in XLA_CPU_LIBS:
    raise ValueError(f"runtime.xla_cpu_libs={s.xla_cpu_libs!r}: one of {', '.join(XLA_CPU_LIBS)}")
  return s


def get() -> Settings:
  """The settings in force in this process."""
  return _CURRENT[0]


def configure(**changes: Any) -> Settings:
  """Changes this process's settings (e.g. from a config's `runtime` section); returns them."""
  known = {f.name for f in dataclasses.fields(Settings)}
  unknown = sorted(set(changes) - known)
  if unknown:
    raise ValueError(f"unknown runtime setting(s) {unknown}; known: {sorted(known)}")
  _CURRENT[0] = check(dataclasses.replace(_CURRENT[0], **changes))
  return _CURRENT[0]


_CONV_IMPL: contextvars.ContextVar[str] = contextvars.ContextVar("textrec_conv_impl",
                                                                 default="auto")
_NATIVE_OFF: contextvars.ContextVar[bool] = contextvars.ContextVar("textrec_native_off",
                                                                   default=False)


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar, value: Any) -> Iterator[None]:
  """`var` holds `value` within this context (this thread or task only)."""
  token = var.set(value)
  try:
    yield
  finally:
    var.reset(token)


def conv_impl(name: str) -> contextlib.AbstractContextManager:
  """Within this context, Conv2D traces with implementation `name` ("fast", "xla" or "auto";
  textrec.models.layers). It acts at trace time: a function jitted earlier keeps the
  implementation it was traced with."""
  if name not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be 'fast', 'xla' or 'auto', got {name!r}")
  return scoped(_CONV_IMPL, name)


def current_conv_impl(backend: str) -> str:
  """"fast" or "xla": the context's choice, "auto" resolved by `backend` (JAX's default
  backend: "cpu", "gpu", "tpu")."""
  name = _CONV_IMPL.get()
  if name == "auto":
    return "fast" if backend == "cpu" else "xla"
  return name


def native_kernels_off() -> contextlib.AbstractContextManager:
  """Within this context (at trace time), no native kernel is traced: XLA's own ops only."""
  return scoped(_NATIVE_OFF, True)


def native_kernels_wanted() -> bool:
  """The setting, unless a `native_kernels_off()` context is active."""
  return get().native_kernels and not _NATIVE_OFF.get()
