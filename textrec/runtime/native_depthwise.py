"""A native depthwise convolution for XLA:CPU inference (native_depthwise.cc, via the XLA FFI).

XLA:CPU runs a depthwise conv (as `layers.depthwise_multi`'s shifted multiply-adds, or as its
own grouped convolution) well below the CPU's arithmetic rate; the C++ kernel beside this
file runs PP-OCRv4 mobile's shapes faster (`scripts/bench_kernels.py --depthwise` times
both). It is compiled on first use with the machine's C++
compiler (`$CXX`, default g++; -O3 -march=native against jaxlib's FFI headers) into
`$TEXTREC_CACHE/native/`, keyed by its source, jaxlib's version, the CPU and the compiler,
and registered with XLA as an FFI target.

`available()` says whether it is in use. It is not when: the runtime setting `native_kernels`
is off (textrec.runtime.settings), or a `settings.native_kernels_off()` context is active; JAX's
backend is not the CPU; more than one JAX device is visible (a custom call has no rule for
splitting across devices, so data-parallel programs keep XLA's own ops); or the build fails
(no compiler: one warning line, then XLA's ops, with the same results to float32 round-off).
The gradient is not native (layers.depthwise_multi's hand-written one), and export never
reaches it (export traces plain convolutions).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import shutil
import subprocess

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from textrec import files
from textrec.runtime import settings, xla_cpu

TARGET = "textrec_depthwise_conv"
SOURCE = pathlib.Path(__file__).with_name("native_depthwise.cc")
_log = logging.getLogger("textrec")


def _compiler() -> str | None:
  return shutil.which(os.environ.get("CXX", "g++"))


@functools.cache
def fingerprint() -> str:
  """Identifies the build: source, jaxlib, CPU and compiler ("" when there is no compiler)."""
  cxx = _compiler()
  if cxx is None:
    return ""
  h = hashlib.sha256(SOURCE.read_bytes())
  for part in (jaxlib.__version__, xla_cpu.cpu_model(), cxx):
    h.update(part.encode())
  return h.hexdigest()[:24]


def _build() -> pathlib.Path:
  """Compiles the kernel (once per machine and key) -> the shared library's path."""
  lib = pathlib.Path(files.cache_root()) / "native" / f"depthwise-{fingerprint()}.so"
  if lib.exists():
    return lib
  with files.atomic_path(lib, suffix=".so") as tmp:
    cmd = [_compiler(), "-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w",
           f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
  return lib


@functools.cache
def _registered() -> bool:
  """Builds and registers the FFI target once per process; False (with one warning) when
  the build fails."""
  if not fingerprint():
    _log.warning("textrec: no C++ compiler ($CXX or g++) found; depthwise convs use XLA's "
                 "ops (slower; the runtime setting native_kernels=False hides this)")
    return False
  try:
    lib = ctypes.cdll.LoadLibrary(str(_build()))
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.TextrecDepthwiseConv),
                                platform="cpu")
    return True
  except (OSError, subprocess.SubprocessError) as e:
    detail = getattr(e, "stderr", "") or str(e)
    _log.warning("textrec: building the native depthwise conv failed (%s); using XLA's ops",
                 detail.strip().splitlines()[-1] if detail.strip() else type(e).__name__)
    return False


def available() -> bool:
  """Whether `depthwise_conv` may be traced now (module doc)."""
  if not settings.native_kernels_wanted():
    return False
  if jax.default_backend() != "cpu" or jax.device_count() != 1:
    return False
  return _registered()


def depthwise_conv(x: jax.Array, k: jax.Array, strides: tuple[int, int],
                   padding: tuple[int, int]) -> jax.Array:
  """x [B, H, W, C] f32, k [kh, kw, C] f32, symmetric zero `padding` -> [B, Ho, Wo, C]."""
  (sh, sw), (ph, pw) = strides, padding
  kh, kw = k.shape[:2]
  b, h, w, c = x.shape
  out = jax.ShapeDtypeStruct((b, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1, c),
                             jnp.float32)
  return jax.ffi.ffi_call(TARGET, out, vmap_method="sequential")(
      x, k, sh=np.int64(sh), sw=np.int64(sw), ph=np.int64(ph), pw=np.int64(pw))
