"""Optimiser and learning-rate schedule from `config.optim`, as PaddleOCR's trainer builds and
steps them (checked against its recorded steps in tests/test_paddle_trainer.py).

Per element, for a parameter with lr multiplier mu, coupled L2 coefficient c and decoupled
decay lam (`param_rules`), with lr the scheduled value of the step:
  g' = g + c * p;  m, v = Adam moments of g';  p -= lr * mu * (lam * p + m_hat / (sqrt(v_hat) + eps))
* "adam": Paddle's Adam with an L2Decay regulariser, i.e. *coupled* L2 (c = weight_decay,
  lam = 0). Per-parameter regularisers that PaddleOCR's modules set replace the global
  factor: the BatchNorms inside PPLCNetV3's ConvBNLayer and PPHGNet's ConvBNAct (`.../bn/...`)
  have c = 0; the CTC head's fc has `fc_decay` (1e-5).
* "adamw": decoupled decay lam = weight_decay, skipped for 1-D parameters (biases, norm scales)
  and for names containing "norm" (PaddleOCR's `one_dim_param_no_weight_decay` +
  `no_weight_decay_name: norm` of the SVTRv2/RepSVTR configs). Paddle's AdamW still applies
  per-parameter regularisers: the CTC head's fc keeps its coupled 1e-5.
* LearnableAffineBlock parameters (`.../lab/scale|bias`) learn at 0.1 x the rate (mu).
* Schedule (Paddle `Cosine` + `LinearWarmup`), from optax's schedules: lr * s / W for s < W,
  then lr * (1 + cos(pi * (s - W) / S)) / 2 with S = total steps, W = warmup steps; the first
  step uses lr(0) = 0 (Adam still counts it).
* Gradient clipping by global norm (`clip_norm`, 0 = off; PaddleOCR's recipes have none).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from textrec.errors import UsageError

FC_DECAY = 1e-5   # CTCHead fc_decay in PaddleOCR's PP-OCRv4 configs
LAB_LR = 0.1      # PPLCNetV3 LearnableAffineBlock lr multiplier


def _path_str(path) -> str:
  parts = []
  for k in path:
    parts.append(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))))
  return "/".join(parts)


def _own_l2(path: str) -> float | None:
  """A parameter's own ParamAttr regulariser in PaddleOCR's modules (None = the global one)."""
  segs = path.split("/")
  if "bn" in segs:
    return 0.0
  if "ctc_head" in segs and "fc" in segs:
    return FC_DECAY
  return None


def l2_coefficient(path: str, weight_decay: float) -> float:
  """Coupled-L2 factor c for one parameter under Adam with global L2 `weight_decay`."""
  own = _own_l2(path)
  return weight_decay if own is None else own


def decoupled_decay_mask(path: str, leaf: Any) -> bool:
  """True where AdamW decays: at least 2-D and no "norm" in the name."""
  return jnp.ndim(leaf) >= 2 and "norm" not in path.lower()


class ParamRule(NamedTuple):
  """One parameter's update rule: lr multiplier mu, coupled L2 c, decoupled decay lam."""
  lr_mult: float
  l2: float
  decay: float


def param_rules(cfg, params) -> Any:
  """A tree like `params` of `ParamRule`s for `config.optim` (PaddleOCR's per-parameter
  regularisers and lr multipliers; see the module doc)."""

  def rule(path, leaf) -> ParamRule:
    p = _path_str(path)
    wd = float(cfg.weight_decay or 0.0)
    if cfg.name == "adam":
      return ParamRule(lr_multiplier(p), l2_coefficient(p, wd), 0.0)
    if cfg.name == "adamw":
      own = _own_l2(p)
      return ParamRule(lr_multiplier(p), FC_DECAY if own == FC_DECAY else 0.0,
                       wd if decoupled_decay_mask(p, leaf) else 0.0)
    raise UsageError(f"config.optim.name: unknown optimiser {cfg.name!r} (adam | adamw)")

  return jax.tree_util.tree_map_with_path(rule, params)


def lr_multiplier(path: str) -> float:
  segs = path.split("/")
  return LAB_LR if len(segs) >= 2 and segs[-2] == "lab" else 1.0


def cosine_schedule(lr: float, total_steps: int, warmup_steps: int) -> optax.Schedule:
  """Paddle's LinearWarmup(start 0) around CosineAnnealingDecay(T_max = total_steps).

  The cosine starts after the warmup and spans `total_steps` (not less the warmup), so it
  never reaches 0 within the run: optax's warmup-cosine with `decay_steps` = warmup + total.
  """
  total = max(int(total_steps), 1)
  warm = int(warmup_steps)
  if warm <= 0:
    return optax.cosine_decay_schedule(lr, decay_steps=total)
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps=warm,
                                            decay_steps=warm + total)


def constant_schedule(lr: float, warmup_steps: int) -> optax.Schedule:
  """Paddle's LinearWarmup(start 0) around a constant lr."""
  if warmup_steps <= 0:
    return optax.constant_schedule(lr)
  return optax.linear_schedule(0.0, lr, transition_steps=int(warmup_steps))


def make_schedule(cfg, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
  """lr(count) for `config.optim`, count 0-based (the first update uses lr(0) = 0 with a
  warmup, as Paddle's). Warmup steps = round(warmup_epochs * steps_per_epoch), even when
  the run is shorter (Paddle's LinearWarmup then ramps for the whole run, never at `lr`)."""
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  if cfg.schedule == "cosine":
    return cosine_schedule(cfg.lr, total_steps, warmup)
  if cfg.schedule == "constant":
    return constant_schedule(cfg.lr, warmup)
  raise UsageError(f"config.optim.schedule: unknown schedule {cfg.schedule!r} "
                   "(cosine | constant)")


def _per_leaf(fn: Callable[[jax.Array, Any, jax.Array], jax.Array],
              consts) -> optax.GradientTransformation:
  """Stateless transformation `u -> fn(u, const, param)` with a per-leaf constant tree."""

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("this optimiser needs `params` in update()")
    return jax.tree.map(fn, updates, consts, params), state

  return optax.GradientTransformation(init, update)


class PaddleAdamState(NamedTuple):
  """count i32[]; mu, nu: the moments (trees like the params); b1_pow, b2_pow: f32[] running
  products beta**count (Paddle keeps them so, not as a power)."""
  count: jax.Array
  mu: Any
  nu: Any
  b1_pow: jax.Array
  b2_pow: jax.Array


def scale_by_paddle_adam(b1: float = 0.9, b2: float = 0.999,
                         eps: float = 1e-8) -> optax.GradientTransformation:
  """Adam's direction as Paddle's kernel evaluates it: with b^t float32 running products,
  `sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps * sqrt(1 - b2^t))`. The same algebra as
  `optax.scale_by_adam`; a power `b**t` differs by float32 ulps in `1 - b2^t`, which shifts
  early updates by up to ~1e-5 relative."""

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    one = jnp.ones([], jnp.float32)
    return PaddleAdamState(jnp.zeros([], jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params),
                           one, one)

  # The constants enter as float32, and 1 - b from the float32 b (1 - 0.999 in float64 is
  # 1.3e-5 relative off Paddle's, a 6e-6 relative error in each early update).
  f1, f2, feps = jnp.float32(b1), jnp.float32(b2), jnp.float32(eps)
  c1, c2 = jnp.float32(1) - f1, jnp.float32(1) - f2

  def update(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: f1 * m + c1 * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: f2 * v + c2 * g * g, state.nu, updates)
    b1_pow, b2_pow = state.b1_pow * f1, state.b2_pow * f2
    corr2 = jnp.sqrt(1 - b2_pow)
    scale = corr2 / (1 - b1_pow)
    out = jax.tree.map(lambda m, v: scale * (m / (jnp.sqrt(v) + feps * corr2)), mu, nu)
    return out, PaddleAdamState(optax.safe_increment(state.count), mu, nu, b1_pow, b2_pow)

  return optax.GradientTransformation(init, update)


class FreezeState(NamedTuple):
  count: jax.Array


def freeze_for(steps: int, frozen) -> optax.GradientTransformation:
  """Zeroes the updates of leaves where `frozen` (a bool tree) is True for the first `steps`
  updates (their Adam moments still accumulate)."""

  def init(params):
    del params
    return FreezeState(jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    del params
    on = state.count >= steps
    new = jax.tree.map(lambda u, f: jnp.where(on, u, jnp.zeros_like(u)) if f else u,
                       updates, frozen)
    return new, FreezeState(optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


def make_optimizer(cfg, params, total_steps: int, steps_per_epoch: int,
                   freeze_backbone_steps: int = 0
                   ) -> tuple[optax.GradientTransformation, Callable]:
  """Returns (optimizer, schedule) for `config.optim` and the given params tree.

  `freeze_backbone_steps` > 0 holds the params under "backbone/" still for that many steps.
  """
  schedule = make_schedule(cfg, total_steps, steps_per_epoch)
  rules = param_rules(cfg, params)
  is_rule = lambda x: isinstance(x, ParamRule)
  pick = lambda field: jax.tree.map(lambda r: getattr(r, field), rules, is_leaf=is_rule)
  paths = jax.tree_util.tree_map_with_path(lambda p, _: _path_str(p), params)
  chain = []
  if cfg.clip_norm and cfg.clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.clip_norm))
  # g' = g + c * p (coupled L2, before the moments), Adam, + lam * p (decoupled, pre-step p),
  # then x mu x -lr(count).
  chain.append(_per_leaf(lambda u, c, p: u + c * p if c else u, pick("l2")))
  chain.append(scale_by_paddle_adam(cfg.beta1, cfg.beta2, float(cfg.get("eps", 1e-8))))
  chain.append(_per_leaf(lambda u, lam, p: u + lam * p if lam else u, pick("decay")))
  chain.append(_per_leaf(lambda u, m, p: u * m if m != 1.0 else u, pick("lr_mult")))
  chain.append(optax.scale_by_learning_rate(schedule))
  if freeze_backbone_steps > 0:
    frozen = jax.tree.map(lambda p: p.split("/")[0] == "backbone", paths)
    chain.append(freeze_for(freeze_backbone_steps, frozen))
  return optax.chain(*chain), schedule

