"""PPLCNetV3 backbone, as PaddleOCR's `rec_lcnetv3.py` (recognition and `det=True` variants).

NHWC in, NHWC out. Recognition: x [B, H, W, 3] -> [B, 1, T, C] with
C = make_divisible(512 * scale) (480 at scale 0.95). Eval pools with a [3, 2] average window
(T = W / 8); training pools adaptively to [1, 40], as Paddle does.
Detection (`det=True`, NET_CONFIG_DET: square int strides): the outputs of blocks3..blocks6
(strides 4, 8, 16, 32) each go through a 1x1 conv `layer_list_<i>` (with bias) to
int(DET_MV_C[i] * scale) channels: a list of 4 maps [B, H/s, W/s, C_i].

Module names mirror Paddle's state_dict: `conv1/{conv,bn}`, `blocks2_0/dw_conv/conv_kxk_0/conv`,
`.../identity` (BatchNorm), `.../conv_1x1`, `.../lab`, `.../act/lab`, `.../se/{conv1,conv2}`.
With `deploy=True` every LearnableRepLayer holds a single `reparam_conv` (kernel + bias)
instead of its branches; `textrec.models.reparam.deploy_variables` converts the variables.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from textrec.models import layers
from textrec.models import reparam

Stride = int | tuple[int, int]

# Per stage: (kernel, in_c, out_c, stride, use_se), channels before scaling.
NET_CONFIG_REC: dict[str, tuple[tuple[int, int, int, Stride, bool], ...]] = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 1, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, (2, 1), False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, (1, 2), False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
                (5, 256, 256, 1, False), (5, 256, 256, 1, False)),
    "blocks6": ((5, 256, 512, (2, 1), True), (5, 512, 512, 1, True),
                (5, 512, 512, (2, 1), False), (5, 512, 512, 1, False)),
}

# The detection variant downsamples symmetrically with int strides 2 (no activation after
# those depthwise convs, see `_is_int`).
NET_CONFIG_DET: dict[str, tuple[tuple[int, int, int, Stride, bool], ...]] = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 2, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, 2, False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, 2, False), (5, 256, 256, 1, False), (5, 256, 256, 1, False),
                (5, 256, 256, 1, False), (5, 256, 256, 1, False)),
    "blocks6": ((5, 256, 512, 2, True), (5, 512, 512, 1, True),
                (5, 512, 512, 1, False), (5, 512, 512, 1, False)),
}
# Channels (before scaling) of the det-mode 1x1 convs after blocks3..blocks6.
DET_MV_C = (16, 24, 56, 480)
STAGES = ("blocks2", "blocks3", "blocks4", "blocks5", "blocks6")


def make_divisible(v: float, divisor: int = 16, min_value: int | None = None) -> int:
  min_value = divisor if min_value is None else min_value
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


# Paddle compares the (int or tuple) stride with Python `==`: a tuple stride such as (2, 1)
# is never "1" (no identity branch) and never "2" (the activation is kept).
def _is_int(stride: Stride, value: int) -> bool:
  return not isinstance(stride, (tuple, list)) and stride == value


def _padding(kernel_size: int) -> int:
  return (kernel_size - 1) // 2


class LearnableAffineBlock(nn.Module):
  """y = scale * x + bias with scalar (shape [1]) parameters."""

  scale_value: float = 1.0
  bias_value: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.constant(self.scale_value), (1,))
    bias = self.param("bias", nn.initializers.constant(self.bias_value), (1,))
    return x * scale.astype(x.dtype) + bias.astype(x.dtype)


class Act(nn.Module):
  """Hardswish (or ReLU) followed by a LearnableAffineBlock named `lab`."""

  act: str = "hswish"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.act == "hswish":
      x = layers.hardswish(x)
    elif self.act == "relu":
      x = nn.relu(x)
    else:
      raise ValueError(f"Act: unknown activation {self.act!r} (hswish | relu)")
    return LearnableAffineBlock(name="lab")(x)


class _Kernel(nn.Module):
  """Holds a conv kernel `kernel` [kh, kw, Cin/groups, Cout]; returns it."""

  @nn.compact
  def __call__(self, shape: tuple[int, ...]) -> jax.Array:
    return self.param("kernel", nn.initializers.he_normal(), shape)


class BatchNormAffine(nn.Module):
  """Paddle's BatchNorm2D (momentum 0.9, eps 1e-5; flax BatchNorm's variables `scale`, `bias`,
  batch_stats `mean`, `var`) returned as the per-channel affine (a, b) it applies: y*a + b.

  `stats` = (mean, var) [C] of the batch (used, and folded into the running stats, when
  `train`); in eval the running stats are used and `stats` may be None.
  """

  features: int

  @nn.compact
  def __call__(self, stats: tuple[jax.Array, jax.Array] | None, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    c = self.features
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    scale = self.param("scale", nn.initializers.ones, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    if layers.bn_uses_batch_stats(train):
      mean, var = (s.astype(jnp.float32) for s in stats)
      if not self.is_initializing():
        ra_mean.value = 0.9 * ra_mean.value + 0.1 * mean
        ra_var.value = 0.9 * ra_var.value + 0.1 * var
    else:
      mean, var = ra_mean.value, ra_var.value
    a = scale * lax.rsqrt(var + 1e-5)
    return a, bias - mean * a


def batch_stats(y: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-channel (mean, biased two-pass variance) of y [..., C] in float32."""
  y = y.astype(jnp.float32)
  axes = tuple(range(y.ndim - 1))
  mean = jnp.mean(y, axes)
  return mean, jnp.mean(jnp.square(y - mean), axes)


class ConvBNLayer(nn.Module):
  """Conv (no bias, padding (k-1)//2) + BatchNorm: `conv/kernel`, `bn`.

  Besides `__call__`, `kernel(cin)` and `bn(stats, train) -> (a, b)` let LearnableRepLayer
  fuse several branches.
  """

  features: int
  kernel_size: int
  strides: Stride = 1
  groups: int = 1
  dtype: Any = None

  def setup(self):
    self.conv = _Kernel()
    self.bn = BatchNormAffine(self.features)

  def kernel(self, cin: int) -> jax.Array:
    if cin % self.groups:
      raise ValueError(f"{self.name}: {cin} input channels not divisible by groups={self.groups}")
    k = self.kernel_size
    return self.conv((k, k, cin // self.groups, self.features))

  def norm(self, y: jax.Array, train: bool = False) -> jax.Array:
    a, b = self.bn(batch_stats(y) if train else None, train)
    return y * a.astype(y.dtype) + b.astype(y.dtype)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    dt = self.dtype or x.dtype
    y = layers.conv2d(x.astype(dt), self.kernel(x.shape[-1]).astype(dt), self.strides,
                      _padding(self.kernel_size), self.groups)
    return self.norm(y, train)


def _sum_affine(ys: Sequence[jax.Array], ab: Sequence[tuple[jax.Array, jax.Array]]
                ) -> jax.Array:
  """sum_m ys[m] * a_m + b_m, in the order given."""
  out = None
  for y, (a, b) in zip(ys, ab):
    t = y * a.astype(y.dtype) + b.astype(y.dtype)
    out = t if out is None else out + t
  return out


class LearnableRepLayer(nn.Module):
  """Sum of `num_conv_branches` kxk ConvBN branches, a 1x1 ConvBN branch (k > 1) and an
  identity BatchNorm (in == out channels and int stride 1), then `lab`, then `act` (unless
  the stride is the int 2). `deploy=True`: one `reparam_conv` replaces the branches.

  Training form, "fast" conv impl (the same maths, arranged for XLA:CPU):
    * depthwise: all branches in one `layers.depthwise_multi` pass (the identity and 1x1 as
      centre-tap kernels), each branch normalised with its batch statistics, then summed;
    * 1x1 (pointwise): every branch is X @ K_m, so its batch mean is mean(X) @ K_m and its
      variance diag(K_m^T Cov(X) K_m); the BN-weighted sum is then ONE matmul
      X @ sum_m K_m a_m (+ the identity's diag(a)) -- a third of the FLOPs of the branches;
    * eval: the BNs (running stats) are folded into one kernel, as the deploy form.
  """

  features: int
  kernel_size: int
  strides: Stride = 1
  groups: int = 1
  num_conv_branches: int = 1
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.deploy:
      out = layers.Conv2D(self.features, self.kernel_size, self.strides,
                          _padding(self.kernel_size), groups=self.groups, dtype=self.dtype,
                          name="reparam_conv")(x)
    else:
      out = self._branches(x, train)
    out = LearnableAffineBlock(name="lab")(out)
    if not _is_int(self.strides, 2):
      out = Act(name="act")(out)
    return out

  def _branches(self, x: jax.Array, train: bool) -> jax.Array:
    k, cin, cout = self.kernel_size, x.shape[-1], self.features
    dt = self.dtype or x.dtype
    x = x.astype(dt)
    has_id = cout == cin and _is_int(self.strides, 1)
    ident = BatchNormAffine(cin, name="identity") if has_id else None
    b1 = (ConvBNLayer(cout, 1, self.strides, self.groups, self.dtype, name="conv_1x1")
          if k > 1 else None)
    kxk = [ConvBNLayer(cout, k, self.strides, self.groups, self.dtype, name=f"conv_kxk_{i}")
           for i in range(self.num_conv_branches)]
    fast = layers.current_conv_impl() == "fast"
    depthwise = self.groups == cin == cout
    if fast and depthwise:
      kk = jnp.stack([br.kernel(cin)[:, :, 0, :] for br in kxk]).astype(dt)
      kc = ([jnp.ones((cin,), dt)] if has_id else []) + (
          [b1.kernel(cin)[0, 0, 0, :].astype(dt)] if b1 is not None else [])
      kc = jnp.stack(kc) if kc else jnp.zeros((0, cin), dt)
      if not train:  # one folded kernel: sum_m a_m k_m (centre taps added in the middle)
        ab = ([ident(None)] if has_id else []) + ([b1.bn(None)] if b1 is not None else [])
        ab_k = [br.bn(None) for br in kxk]
        kf = sum(kk[m] * ab_k[m][0].astype(dt) for m in range(len(kxk)))
        p = k // 2
        for m, (a, _) in enumerate(ab):
          kf = kf.at[p, p].add(kc[m] * a.astype(dt))
        bias = sum(b for _, b in ab + ab_k)
        y, = layers.depthwise_multi(x, kf[None], jnp.zeros((0, cin), dt), self.strides,
                                    _padding(k))
        return y + bias.astype(dt)
      ys = layers.depthwise_multi(x, kk, kc, self.strides, _padding(k))
      n = len(kxk)
      norms = ([ident] if has_id else []) + ([b1.bn] if b1 is not None else [])
      ab_c = [bn(batch_stats(y), True) for bn, y in zip(norms, ys[n:])]
      ab_k = [br.bn(batch_stats(y), True) for br, y in zip(kxk, ys[:n])]
      return _sum_affine(list(ys[n:]) + list(ys[:n]), ab_c + ab_k)
    if fast and k == 1 and self.groups == 1 and _is_int(self.strides, 1):
      xm = x.reshape(-1, cin)
      ks = [br.kernel(cin)[0, 0].astype(dt) for br in kxk]
      if train:
        xf = xm.astype(jnp.float32)
        mu = jnp.mean(xf, 0)
        xc = xf - mu
        cov = jnp.dot(xc.T, xc) / xf.shape[0]
        ab = [br.bn((mu @ kf, jnp.maximum(jnp.sum((cov @ kf) * kf, 0), 0.0)), True)
              for br, kf in zip(kxk, (kq.astype(jnp.float32) for kq in ks))]
        ab_id = ident((mu, jnp.diagonal(cov)), True) if has_id else None
      else:
        ab = [br.bn(None) for br in kxk]
        ab_id = ident(None) if has_id else None
      w = sum(kq * a.astype(dt) for kq, (a, _) in zip(ks, ab))
      bias = sum(b for _, b in ab)
      if has_id:
        w = w + jnp.diag(ab_id[0].astype(dt))
        bias = bias + ab_id[1]
      y = jnp.dot(xm, w) + bias.astype(dt)
      return y.reshape(x.shape[:-1] + (cout,))
    # General path (and the "xla" impl, which export uses): the branches as one multi_conv2d,
    # the identity as a one-hot kernel and the 1x1 kernel zero-padded to k x k (both exact).
    kernels, norms = [], []
    if has_id:
      kernels.append(jnp.asarray(reparam.identity_kernel(cin, cin // self.groups, k), dt))
      norms.append(lambda y: _sum_affine([y], [ident(batch_stats(y) if train else None, train)]))
    if b1 is not None:
      p = k // 2
      kernels.append(jnp.pad(b1.kernel(cin).astype(dt), ((p, p), (p, p), (0, 0), (0, 0))))
      norms.append(lambda y: b1.norm(y, train))
    for br in kxk:
      kernels.append(br.kernel(cin).astype(dt))
      norms.append(lambda y, br=br: br.norm(y, train))
    ys = layers.multi_conv2d(x, kernels, self.strides, _padding(k), self.groups)
    out = None
    for norm, y in zip(norms, ys):
      t = norm(y)
      out = t if out is None else out + t
    return out


class SELayer(nn.Module):
  """Squeeze-excitation: mean over H, W -> 1x1 conv (C/r) -> ReLU -> 1x1 conv -> hardsigmoid.

  x [B, H, W, C] -> x * gate [B, H, W, C]. PPLCNetV3 uses nn.Hardsigmoid (slope 0.1666667);
  the DB FPN and MobileNetV3 SE modules use F.hardsigmoid's slope 0.2.
  """

  reduction: int = 4
  hardsigmoid_slope: float = 0.1666667
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = layers.Conv2D(c // self.reduction, 1, dtype=self.dtype, name="conv1")(s)
    s = nn.relu(s)
    s = layers.Conv2D(c, 1, dtype=self.dtype, name="conv2")(s)
    return x * layers.paddle_hardsigmoid(s, self.hardsigmoid_slope)


class LCNetV3Block(nn.Module):
  """Depthwise LearnableRepLayer (`dw_conv`) -> optional `se` -> pointwise (`pw_conv`)."""

  features: int
  strides: Stride
  dw_size: int
  use_se: bool = False
  conv_kxk_num: int = 4
  deploy: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cin = x.shape[-1]
    x = LearnableRepLayer(cin, self.dw_size, self.strides, groups=cin,
                          num_conv_branches=self.conv_kxk_num, deploy=self.deploy,
                          dtype=self.dtype, name="dw_conv")(x, train)
    if self.use_se:
      x = SELayer(dtype=self.dtype, name="se")(x)
    return LearnableRepLayer(self.features, 1, 1, num_conv_branches=self.conv_kxk_num,
                             deploy=self.deploy, dtype=self.dtype, name="pw_conv")(x, train)


def adaptive_avg_pool(x: jax.Array, out_hw: Sequence[int]) -> jax.Array:
  """Paddle/PyTorch adaptive average pooling of x [B, H, W, C] to [B, oh, ow, C]."""
  def bins(n: int, m: int) -> list[tuple[int, int]]:
    return [((i * n) // m, -((-(i + 1) * n) // m)) for i in range(m)]

  h, w = x.shape[1], x.shape[2]
  oh, ow = out_hw
  if h % oh == 0 and w % ow == 0:
    b, _, _, c = x.shape
    return x.reshape(b, oh, h // oh, ow, w // ow, c).mean(axis=(2, 4))
  rows = [x[:, h0:h1].mean(axis=1, keepdims=True) for h0, h1 in bins(h, oh)]
  x = jnp.concatenate(rows, axis=1)
  cols = [x[:, :, w0:w1].mean(axis=2, keepdims=True) for w0, w1 in bins(w, ow)]
  return jnp.concatenate(cols, axis=2)


def avg_pool(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """Non-overlapping average pooling (stride = window, no padding, floor), x [B, H, W, C]."""
  b, h, w, c = x.shape
  kh, kw = window
  ho, wo = h // kh, w // kw
  if ho == 0 or wo == 0:
    raise ValueError(f"avg_pool {window} needs a feature map of at least that size, got {h}x{w}")
  x = x[:, :ho * kh, :wo * kw]
  return x.reshape(b, ho, kh, wo, kw, c).mean(axis=(2, 4))


def rec_pool(x: jax.Array, train: bool, train_hw: Sequence[int] = (1, 40),
             eval_window: tuple[int, int] = (3, 2)) -> jax.Array:
  """The last pooling of PaddleOCR's recognition backbones, x [B, H, W, C]: adaptive average
  pooling to `train_hw` in training, `eval_window` average pooling at eval."""
  return adaptive_avg_pool(x, train_hw) if train else avg_pool(x, eval_window)


class PPLCNetV3(nn.Module):
  """`conv1` (ConvBN, stride 2) then `blocks2`..`blocks6`.

  Recognition: x [B, H, W, 3] -> [B, 1, T, C]. `det=True`: x [B, H, W, 3] -> a list of 4
  maps [B, H/s, W/s, C_i] (s = 4, 8, 16, 32; C_i = `out_channels[i]`).
  """

  scale: float = 0.95
  conv_kxk_num: int = 4
  net_config: Any = None  # None = NET_CONFIG_DET if det else NET_CONFIG_REC
  train_pool_hw: tuple[int, int] = (1, 40)
  eval_pool: tuple[int, int] = (3, 2)
  det: bool = False
  deploy: bool = False
  dtype: Any = None

  def _config(self) -> dict:
    return self.net_config or (NET_CONFIG_DET if self.det else NET_CONFIG_REC)

  @property
  def out_channels(self) -> int | list[int]:
    if self.det:
      return [int(c * self.scale) for c in DET_MV_C]
    return make_divisible(self._config()["blocks6"][-1][2] * self.scale)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | list[jax.Array]:
    cfg = self._config()
    x = ConvBNLayer(make_divisible(16 * self.scale), 3, 2, dtype=self.dtype, name="conv1")(
        x, train)
    outs = []
    for stage in STAGES:
      for i, (k, _, out_c, s, se) in enumerate(cfg[stage]):
        s = tuple(s) if isinstance(s, (list, tuple)) else s
        x = LCNetV3Block(make_divisible(out_c * self.scale), s, k, se, self.conv_kxk_num,
                         self.deploy, self.dtype, name=f"{stage}_{i}")(x, train)
      if stage != "blocks2":
        outs.append(x)
    if self.det:
      return [layers.Conv2D(c, 1, dtype=self.dtype, name=f"layer_list_{i}")(o)
              for i, (c, o) in enumerate(zip(self.out_channels, outs))]
    return rec_pool(x, train, self.train_pool_hw, self.eval_pool)
