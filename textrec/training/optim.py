"""Optimiser and learning-rate schedule from `config.optim`, as PaddleOCR builds them.

* "adam": Paddle's Adam with an L2Decay regulariser, i.e. *coupled* L2: the gradient gets
  `coeff * param` added (after clipping, before the moments). Per-parameter regularisers that
  PaddleOCR's modules set override the global factor: the BatchNorms inside PPLCNetV3's
  ConvBNLayer (`.../bn/...`) have 0; the CTC head's fc has `fc_decay` (1e-5).
* "adamw": decoupled decay (`param -= lr * wd * param`), skipped for 1-D parameters (biases,
  norm scales) and for names containing "norm" or "pos_embed" (PaddleOCR's
  `one_dim_param_no_weight_decay` + `no_weight_decay_name` of the SVTRv2/RepSVTR configs).
* LearnableAffineBlock parameters (`.../lab/scale|bias`) learn at 0.1 x the rate (`lab_lr`).
* Schedule (Paddle `Cosine` + `LinearWarmup`), from optax's schedules: lr * s / W for s < W,
  then lr * (1 + cos(pi * (s - W) / S)) / 2 with S = total steps, W = warmup steps.
* Gradient clipping by global norm (`clip_norm`, 0 = off).
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


def l2_coefficient(path: str, weight_decay: float) -> float:
  """Coupled-L2 factor for one parameter (PaddleOCR's per-parameter regularisers)."""
  segs = path.split("/")
  if "bn" in segs:
    return 0.0
  if "ctc_head" in segs and "fc" in segs:
    return FC_DECAY
  return weight_decay


def decoupled_decay_mask(path: str, leaf: Any) -> bool:
  """True where AdamW decays: not 1-D, not a norm, not a positional embedding."""
  if jnp.ndim(leaf) <= 1:
    return False
  low = path.lower()
  return "norm" not in low and "pos_embed" not in low


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
  warmup, as Paddle's). Warmup steps = round(warmup_epochs * steps_per_epoch), below total."""
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  warmup = min(warmup, max(total_steps - 1, 0))
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
  paths = jax.tree_util.tree_map_with_path(lambda p, _: _path_str(p), params)
  lr_mult = jax.tree.map(lr_multiplier, paths)
  chain = []
  if cfg.clip_norm and cfg.clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.clip_norm))
  if cfg.name == "adam":
    if cfg.weight_decay:
      coef = jax.tree.map(lambda p: l2_coefficient(p, cfg.weight_decay), paths)
      chain.append(_per_leaf(lambda u, c, p: u + c * p if c else u, coef))
    chain.append(optax.scale_by_adam(b1=cfg.beta1, b2=cfg.beta2, eps=1e-8))
  elif cfg.name == "adamw":
    chain.append(optax.scale_by_adam(b1=cfg.beta1, b2=cfg.beta2, eps=1e-8))
    if cfg.weight_decay:
      mask = jax.tree_util.tree_map_with_path(
          lambda p, leaf: decoupled_decay_mask(_path_str(p), leaf), params)
      chain.append(optax.add_decayed_weights(cfg.weight_decay, mask=mask))
  else:
    raise UsageError(f"config.optim.name: unknown optimiser {cfg.name!r} (adam | adamw)")
  chain.append(_per_leaf(lambda u, m, p: u * m if m != 1.0 else u, lr_mult))
  chain.append(optax.scale_by_learning_rate(schedule))
  if freeze_backbone_steps > 0:
    frozen = jax.tree.map(lambda p: p.split("/")[0] == "backbone", paths)
    chain.append(freeze_for(freeze_backbone_steps, frozen))
  return optax.chain(*chain), schedule

