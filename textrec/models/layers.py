"""Shared layers. Parameter layout follows flax (conv kernels HWIO, Dense kernels [in, out]);
module names mirror PaddleOCR's attribute names so `.pdparams` map onto them by rule
(see textrec/weights/paddle.py).

Conv2D has two implementations chosen at trace time:
  * "fast": depthwise convs as k*k shifted multiply-adds (at inference a native C++ kernel,
    `native_depthwise`, where it builds), 1x1 convs as matmuls and grouped
    convs as one dense conv per group, each faster than `lax.conv_general_dilated` on
    XLA:CPU (scripts/bench_conv.py);
  * "xla": plain `lax.conv_general_dilated`, which export uses so ONNX gets `Conv` nodes, and
    which GPUs and TPUs run best (cuDNN / the TPU convolution units).
The default, "auto", is "fast" when JAX's default backend is the CPU and "xla" elsewhere.
The parameters are the same standard kernels either way.
"""
from __future__ import annotations

import contextlib
import functools
import contextvars
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from textrec.runtime import native_depthwise, settings

def current_conv_impl() -> str:
  """"fast" or "xla": how Conv2D traces now (textrec.runtime.settings.conv_impl)."""
  return settings.current_conv_impl(jax.default_backend())


_BN_FROZEN: contextvars.ContextVar[bool] = contextvars.ContextVar("textrec_bn_frozen",
                                                                  default=False)


def frozen_batch_norm() -> contextlib.AbstractContextManager:
  """Within this context (at trace time), BatchNorms normalise with their running statistics
  and leave them unchanged even when called with train=True (fine-tuning with frozen BN)."""
  return settings.scoped(_BN_FROZEN, True)


def dropout_off() -> contextlib.AbstractContextManager:
  """Within this context (at trace time), every `nn.Dropout` and drop-path module
  (a class named `DropPath`) returns its input, even when called in training: a training
  step without randomness (as PaddleOCR's trainer records in tests/test_paddle_trainer.py)."""

  def skip(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and (isinstance(module, nn.Dropout)
                                              or type(module).__name__ == "DropPath"):
      return args[0] if args else kwargs["inputs" if "inputs" in kwargs else "x"]
    return next_fun(*args, **kwargs)

  return nn.intercept_methods(skip)


def bn_uses_batch_stats(train: bool) -> bool:
  """Whether a BatchNorm called with `train` normalises with (and folds in) batch stats."""
  return train and not _BN_FROZEN.get()


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(v, int):
    return (v, v)
  v = tuple(v)
  return (v[0], v[1]) if len(v) == 2 else (v[0], v[0])


def conv2d(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding=(0, 0), groups: int = 1,
           impl: str | None = None) -> jax.Array:
  """x [B, H, W, Cin], kernel [kh, kw, Cin/groups, Cout] -> [B, H', W', Cout].

  `padding` is symmetric (ph, pw) as in Paddle/PyTorch.
  """
  impl = impl or current_conv_impl()
  kh, kw, cin_g, cout = kernel.shape
  sh, sw = _pair(strides)
  ph, pw = _pair(padding)
  cin = x.shape[-1]
  if impl == "fast" and groups == cin and cin_g == 1 and cout == cin:
    # Depthwise: sum over taps of shifted, strided slices times a per-channel weight, with
    # the hand-written gradient of `depthwise_multi`.
    k = kernel[:, :, 0, :].astype(x.dtype)[None]
    return depthwise_multi(x, k, jnp.zeros((0, cin), x.dtype), (sh, sw), (ph, pw))[0]
  if impl == "fast" and kh == 1 and kw == 1 and groups == 1 and ph == 0 and pw == 0:
    xs = x[:, ::sh, ::sw, :] if (sh, sw) != (1, 1) else x
    return jnp.einsum("bhwc,cd->bhwd", xs, kernel[0, 0].astype(x.dtype))
  if impl == "fast" and groups > 1:
    # Grouped (not depthwise): one dense conv per group, which XLA:CPU runs faster than its
    # grouped convolution (scripts/bench_conv.py); each output is the same sum either way.
    cout_g = cout // groups
    return jnp.concatenate([
        conv2d(x[..., g * cin_g:(g + 1) * cin_g], kernel[..., g * cout_g:(g + 1) * cout_g],
               strides, padding, 1, impl) for g in range(groups)], axis=-1)
  return lax.conv_general_dilated(
      x, kernel.astype(x.dtype), window_strides=(sh, sw), padding=((ph, ph), (pw, pw)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def multi_conv2d(x: jax.Array, kernels: Sequence[jax.Array], strides=(1, 1), padding=(0, 0),
                 groups: int = 1, impl: str | None = None) -> list[jax.Array]:
  """conv2d of one input with n same-shaped kernels at once -> n outputs.

  Equal to `[conv2d(x, k, ...) for k in kernels]`, but one pass over x: ("fast") each
  depthwise tap slice is taken once and multiplied by every kernel; other convs use one
  kernel with the n kernels interleaved per group (a single matmul for 1x1).
  """
  impl = impl or current_conv_impl()
  n = len(kernels)
  if n == 1:
    return [conv2d(x, kernels[0], strides, padding, groups, impl)]
  kh, kw, cin_g, cout = kernels[0].shape
  sh, sw = _pair(strides)
  ph, pw = _pair(padding)
  cin = x.shape[-1]
  if impl == "fast" and groups == cin and cin_g == 1 and cout == cin:
    kk = jnp.stack([k[:, :, 0, :] for k in kernels]).astype(x.dtype)  # [n, kh, kw, C]
    return list(depthwise_multi(x, kk, jnp.zeros((0, cin), x.dtype), (sh, sw), (ph, pw)))
  # Interleave so that each group's output channels hold all n kernels: [.., G, n, Cout/G].
  g = groups
  ks = jnp.stack([k.reshape(kh, kw, cin_g, g, cout // g) for k in kernels], axis=4)
  y = conv2d(x, ks.reshape(kh, kw, cin_g, g * n * (cout // g)), strides, padding, groups, impl)
  y = y.reshape(y.shape[:3] + (g, n, cout // g))
  return [y[..., m, :].reshape(y.shape[:3] + (cout,)) for m in range(n)]


class Conv2D(nn.Module):
  """Paddle-style Conv2D on NHWC input. Params: `kernel` [kh, kw, Cin/groups, Cout], `bias`."""

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: int | Sequence[int] = 0
  groups: int = 1
  use_bias: bool = True
  dtype: Any = None
  kernel_init: Any = nn.initializers.he_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pair(self.kernel_size)
    cin = x.shape[-1]
    if cin % self.groups:
      raise ValueError(f"{self.name}: {cin} input channels not divisible by groups={self.groups}")
    kernel = self.param("kernel", self.kernel_init, (kh, kw, cin // self.groups, self.features))
    dtype = self.dtype or x.dtype
    y = conv2d(x.astype(dtype), kernel.astype(dtype), self.strides, self.padding, self.groups)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
    return y


def batch_norm(name: str | None = None, train: bool = False, dtype: Any = None) -> nn.BatchNorm:
  """Paddle's BatchNorm2D semantics: momentum 0.9, eps 1e-5, over the last (channel) axis.

  Params `scale`, `bias`; batch_stats `mean`, `var`.
  """
  return nn.BatchNorm(use_running_average=not bn_uses_batch_stats(train), momentum=0.9,
                      epsilon=1e-5, dtype=dtype, use_fast_variance=False, name=name)


def layer_norm(epsilon: float, name: str | None = None, dtype: Any = None) -> nn.LayerNorm:
  """Paddle's nn.LayerNorm over the last axis (two-pass variance, as Paddle computes it)."""
  return nn.LayerNorm(epsilon=epsilon, dtype=dtype, use_fast_variance=False, name=name)


def hardswish(x: jax.Array) -> jax.Array:
  return x * jnp.clip(x + 3.0, 0.0, 6.0) / 6.0


def paddle_hardsigmoid(x: jax.Array, slope: float = 0.1666667, offset: float = 0.5) -> jax.Array:
  """Paddle's nn.Hardsigmoid (slope 0.1666667, not exactly 1/6)."""
  return jnp.clip(x * slope + offset, 0.0, 1.0)


def gelu(x: jax.Array) -> jax.Array:
  """Exact (erf) GELU, Paddle's formula 0.5 x (1 + erf(x / sqrt 2)).

  (jax.nn.gelu's exact form goes through erfc, which XLA:CPU evaluates more slowly than
  erf.)
  """
  return 0.5 * x * (1.0 + lax.erf(x * np.float32(0.7071067811865476)).astype(x.dtype))


def swish(x: jax.Array) -> jax.Array:
  return x * jax.nn.sigmoid(x)


def _dw_geometry(x_shape, k_shape, strides, padding):
  _, h, w, _ = x_shape
  kh, kw = k_shape
  (sh, sw), (ph, pw) = _pair(strides), _pair(padding)
  return h, w, kh, kw, sh, sw, ph, pw, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _dw_taps(x, kh, kw, sh, sw, ph, pw, ho, wo, zero=None):
  """Yields (i, j, tap) with tap [B, Ho, Wo, C] the strided slice of the padded x under (i, j).

  With `zero` (a traced int32 0) the taps are dynamic slices at offsets `zero + (i, j)`.
  XLA then reads every tap, the centre one included, from the padded copy. With static
  slices it sees that the centre tap of a padded input is the input itself and computes
  that input inside this conv's fusion: for a residual block's output, the previous block's
  depthwise conv, whose own centre tap pulls in the block before, and so on, so that
  RepSVTR's stride-1 blocks each recomputed up to six earlier ones.
  """
  b, c = x.shape[0], x.shape[-1]
  xp = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if (ph or pw) else x
  span = (b, (ho - 1) * sh + 1, (wo - 1) * sw + 1, c)
  for i in range(kh):
    for j in range(kw):
      if zero is not None and (ph or pw):
        t = lax.dynamic_slice(xp, (zero, zero + i, zero + j, zero), span)
        t = t[:, ::sh, ::sw] if (sh, sw) != (1, 1) else t
      else:
        t = lax.slice(xp, (0, i, j, 0), (b, i + span[1], j + span[2], c), (1, sh, sw, 1))
      yield i, j, t


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def depthwise_multi(x: jax.Array, kk: jax.Array, kc: jax.Array, strides, padding
                    ) -> tuple[jax.Array, ...]:
  """Depthwise convs of one input with several kernels, as shifted multiply-adds.

  x [B, H, W, C], kk [n, kh, kw, C] (full kernels), kc [m, C] (kernels with only the centre
  tap (ph, pw) non-zero: a padded 1x1 conv, the identity) -> n + m outputs [B, Ho, Wo, C].
  With one kernel and nothing else (inference), float32 on one CPU device, the forward is
  the native C++ kernel of `native_depthwise` when it is available.
  Its gradient is hand-written (same shifted multiply-adds) because XLA:CPU's autodiff of
  the slices (one pad per tap) is slower (scripts/bench_train.py).
  """
  h, w, kh, kw, sh, sw, ph, pw, ho, wo = _dw_geometry(x.shape, kk.shape[1:3], strides, padding)
  n, m = kk.shape[0], kc.shape[0]
  if (n, m) == (1, 0) and x.dtype == kk.dtype == jnp.float32 and native_depthwise.available():
    # One kernel (inference, the deploy form): the C++ kernel (bench_kernels.py --depthwise).
    return (native_depthwise.depthwise_conv(x, kk[0], (sh, sw), (ph, pw)),)
  outs: list[Any] = [None] * (n + m)
  # A zero XLA cannot fold (it is 1 only for a NaN kernel, whose outputs are NaN anyway).
  zero = (kk[0, 0, 0, 0] != kk[0, 0, 0, 0]).astype(jnp.int32) if n else None
  for i, j, tap in _dw_taps(x, kh, kw, sh, sw, ph, pw, ho, wo, zero):
    for b in range(n):
      t = tap * kk[b, i, j]
      outs[b] = t if outs[b] is None else outs[b] + t
    if (i, j) == (ph, pw):
      for b in range(m):
        outs[n + b] = tap * kc[b]
  return tuple(outs)


def _dw_fwd(x, kk, kc, strides, padding):
  return depthwise_multi(x, kk, kc, strides, padding), (x, kk, kc)


def _dw_bwd(strides, padding, res, gs):
  x, kk, kc = res
  h, w, kh, kw, sh, sw, ph, pw, ho, wo = _dw_geometry(x.shape, kk.shape[1:3], strides, padding)
  n, m = kk.shape[0], kc.shape[0]
  bsz, c = x.shape[0], x.shape[-1]
  # dx[h] = sum_i gd[h + kh - 1 - i] k[i], gd = g dilated by the stride and padded.
  lo_h, lo_w = kh - 1 - ph, kw - 1 - pw
  hi_h = h + kh - 1 - lo_h - ((ho - 1) * sh + 1)
  hi_w = w + kw - 1 - lo_w - ((wo - 1) * sw + 1)
  dx = None
  for b in range(n):
    gp = lax.pad(gs[b], jnp.zeros((), gs[b].dtype),
                 ((0, 0, 0), (lo_h, hi_h, sh - 1), (lo_w, hi_w, sw - 1), (0, 0, 0)))
    for i in range(kh):
      for j in range(kw):
        t = lax.slice(gp, (0, i, j, 0), (bsz, i + h, j + w, c)) * kk[b, kh - 1 - i, kw - 1 - j]
        dx = t if dx is None else dx + t
  if m:
    gc = gs[n] * kc[0]
    for b in range(1, m):
      gc = gc + gs[n + b] * kc[b]
    gc = lax.pad(gc, jnp.zeros((), gc.dtype), ((0, 0, 0), (0, h - (ho - 1) * sh - 1, sh - 1),
                                               (0, w - (wo - 1) * sw - 1, sw - 1), (0, 0, 0)))
    dx = gc if dx is None else dx + gc
  # Kernel gradients: n*kh*kw (+ m) per-channel sums over (B, Ho, Wo). XLA:CPU's reductions
  # over the major axes are slow, so a scan takes one image at a time and, per tap, adds
  # its rows as explicit element-wise terms (one fused, vectorised loop per tap); only the
  # final sum over Wo is a reduction. (Unrolling more rows per scan step makes the program
  # larger and its compile longer: scripts/bench_train.py --form=deploy --throughput_only.)
  kw_span = (wo - 1) * sw + 1
  cb = 1

  def per_chunk(acc, inp):
    xb, gb = inp  # [cb, H, W, C], [n + m, cb, Ho, Wo, C]
    xp = jnp.pad(xb, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if (ph or pw) else xb
    dkk: list[Any] = []
    dkc: list[Any] = [None] * m
    for i in range(kh):
      for j in range(kw):
        sums: list[Any] = [None] * (n + m)
        centre = (i, j) == (ph, pw)
        for bb in range(cb):
          for y in range(ho):
            row = lax.slice(xp, (bb, y * sh + i, j, 0), (bb + 1, y * sh + i + 1, j + kw_span, c),
                            (1, 1, sw, 1))[0, 0]  # [Wo, C]
            for q in range(n + m if centre else n):
              t = row * gb[q, bb, y]
              sums[q] = t if sums[q] is None else sums[q] + t
        dkk.append(jnp.stack(sums[:n]))  # [n, Wo, C]
        if centre:
          dkc = sums[n:]
    dkk = jnp.stack(dkk, 1).sum(2).reshape(n, kh, kw, c)  # [n, kh*kw, Wo, C] -> [n, kh, kw, C]
    dkc = jnp.stack(dkc).sum(1) if m else jnp.zeros((0, c), x.dtype)
    return (acc[0] + dkk.astype(acc[0].dtype), acc[1] + dkc.astype(acc[1].dtype)), None

  g_all = jnp.stack(gs, axis=0).reshape((n + m, bsz // cb, cb, ho, wo, c))
  (dkk, dkc), _ = lax.scan(per_chunk, (jnp.zeros(kk.shape, jnp.float32),
                                       jnp.zeros(kc.shape, jnp.float32)),
                           (x.reshape((bsz // cb, cb) + x.shape[1:]), jnp.moveaxis(g_all, 1, 0)))
  dkk, dkc = dkk.astype(kk.dtype), dkc.astype(kc.dtype)
  return dx.astype(x.dtype), dkk, dkc


depthwise_multi.defvjp(_dw_fwd, _dw_bwd)
