"""The training state (a pytree) and how the first one is built.

`merge_pretrained` overlays pretrained variables on freshly initialised ones: leaves whose
path and shape match are taken, leaves whose shape differs (a head sized for another
dictionary) keep their fresh initialisation, leaves the pretrained set lacks (the NRTR branch,
absent from inference weights) stay fresh too. It reports which is which.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from textrec import charset as charset_lib
from textrec.errors import UsageError
from textrec.models import recognizer, registry
from textrec.weights import loader, official


@flax.struct.dataclass
class TrainState:
  """Everything a step reads and writes. All leaves are arrays (checkpointable as is).

  step: i32[] optimiser steps taken (skipped non-finite steps count too).
  params / batch_stats: the model variables (float32 master weights).
  opt_state: optax state. ema_params: EMA of params, or None when EMA is off.
  rng: u32[2] raw PRNG key; step keys are `fold_in(rng, step)`.
  nonfinite: i32[] consecutive non-finite losses so far; nonfinite_total: i32[] all of them.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array
  nonfinite: jax.Array
  nonfinite_total: jax.Array

  @property
  def variables(self) -> dict:
    """Inference variables: EMA params when kept, else params."""
    params = self.ema_params if self.ema_params is not None else self.params
    return {"params": params, "batch_stats": self.batch_stats}


def create(variables: dict, tx: optax.GradientTransformation, seed: int,
           ema: bool = False) -> TrainState:
  params = variables["params"]
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      batch_stats=variables.get("batch_stats", {}),
      opt_state=tx.init(params),
      ema_params=jax.tree.map(jnp.array, params) if ema else None,
      rng=jax.random.PRNGKey(seed),
      nonfinite=jnp.zeros((), jnp.int32),
      nonfinite_total=jnp.zeros((), jnp.int32),
  )


@dataclasses.dataclass
class MergeReport:
  loaded: list[str]
  reinitialised: list[tuple[str, tuple, tuple]]   # (path, pretrained shape, new shape)
  missing: list[str]                              # not in the pretrained set: fresh init
  unused: list[str]                               # pretrained leaves the model has no place for

  def summary(self) -> str:
    lines = [f"pretrained: {len(self.loaded)} tensors loaded"]
    if self.reinitialised:
      lines.append(f"re-initialised {len(self.reinitialised)} tensors whose shape changed "
                   "(e.g. a head sized for another dictionary):")
      lines += [f"  {p}: pretrained {a} -> {b}" for p, a, b in self.reinitialised]
    if self.missing:
      heads = sorted({"/".join(p.split("/")[:3]) for p in self.missing})
      lines.append(f"{len(self.missing)} tensors not in the pretrained weights, freshly "
                   f"initialised, under: {', '.join(heads)}")
    if self.unused:
      lines.append(f"{len(self.unused)} pretrained tensors unused (e.g. {self.unused[0]})")
    return "\n".join(lines)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  out = {}
  if isinstance(tree, dict) or hasattr(tree, "items"):
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}/"))
  else:
    out[prefix[:-1]] = tree
  return out


def _unflatten(flat: dict[str, Any]) -> dict:
  root: dict = {}
  for path, v in flat.items():
    node = root
    *parents, leaf = path.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = v
  return root


def merge_pretrained(fresh: dict, pretrained: dict) -> tuple[dict, MergeReport]:
  """fresh, pretrained: {"params": ..., "batch_stats": ...} -> (merged, report)."""
  f, p = _flatten(fresh), _flatten(pretrained)
  merged, loaded, reinit, missing = {}, [], [], []
  for path, v in f.items():
    if path not in p:
      merged[path] = v
      missing.append(path)
    elif tuple(p[path].shape) != tuple(v.shape):
      merged[path] = v
      reinit.append((path, tuple(p[path].shape), tuple(v.shape)))
    else:
      merged[path] = jnp.asarray(p[path], v.dtype)
      loaded.append(path)
  unused = sorted(set(p) - set(f))
  return _unflatten(merged), MergeReport(loaded, reinit, missing, unused)


# ----------------------------------------------------------------------------- first state
@dataclasses.dataclass
class Setup:
  """What a run starts from: the module, its dictionary and initial variables."""

  model: Any
  charset: Any
  variables: dict
  deploy: bool
  messages: list[str]
  fresh_nrtr: bool = False   # the NRTR branch starts untrained while the rest is pretrained
  drop_nrtr: bool = False    # ... so the model is built without it (config.train.untrained_nrtr)


def drops_nrtr(train_cfg, fresh_nrtr: bool) -> bool:
  """True when the run fine-tunes CTC-only: the NRTR branch would start untrained and
  `train_cfg.untrained_nrtr` is "drop"."""
  mode = train_cfg.get("untrained_nrtr", "drop")
  if mode not in ("drop", "train"):
    raise UsageError(f"config.train.untrained_nrtr: {mode!r} is not one of drop | train")
  return fresh_nrtr and mode == "drop" and bool(train_cfg.nrtr_weight)


def _load_pretrained(config) -> tuple[dict | None, Any, bool, str]:
  """-> (variables or None, charset or None, deploy form?, description)."""
  src = config.train.pretrained
  name = config.model.name
  if not src:
    return None, None, bool(config.model.deploy), "none (from scratch)"
  if src == "official":
    variables, cs = official.load_official(name)
    return variables, cs, True, "official weights (deploy form: fused reparam convs)"

  if not os.path.exists(src) and not os.path.isfile(src + ".pdparams"):
    raise FileNotFoundError(f"config.train.pretrained: {src} does not exist")
  w = loader.load_weights(name, src, config.data.dict_path or None, strict=False,
                         prefix=config.model.get("weights_prefix") or None)
  return w.variables, w.charset, w.deploy, w.source


def _choose_charset(config, dataset_dir: str, pretrained_cs, messages: list[str]):
  space = config.data.use_space_char
  if config.data.dict_path:
    return charset_lib.load_dict(config.data.dict_path, space)
  ds_dict = os.path.join(dataset_dir, "dict.txt")
  if os.path.isfile(ds_dict):
    ds_cs = charset_lib.load_dict(ds_dict, space)
    if pretrained_cs is not None and set(ds_cs.chars) <= set(pretrained_cs.chars):
      if ds_cs != pretrained_cs:
        messages.append(
            f"{ds_dict}: its {len(ds_cs.chars)} characters are all in the pretrained "
            f"dictionary ({len(pretrained_cs.chars)}); keeping the pretrained dictionary and "
            f"heads (set --config.data.dict_path={ds_dict} to train heads on it alone)")
      return pretrained_cs
    return ds_cs
  if pretrained_cs is None:
    raise FileNotFoundError(f"no dictionary: {ds_dict} is absent, config.data.dict_path is "
                            "empty and the pretrained weights carry none")
  return pretrained_cs


def build(config, dataset_dir: str, resume_meta: dict | None = None) -> Setup:
  """Model + charset + initial variables for `config` (pretrained merged in; see module doc).

  With `resume_meta` (a checkpoint's meta) the dictionary and form are the checkpoint's and the
  variables are only a template for the restore.
  """
  messages: list[str] = []
  if resume_meta is not None:
    pre, cs, deploy = None, charset_lib.Charset(tuple(resume_meta["chars"])), \
        bool(resume_meta.get("deploy"))
  else:
    pre, pre_cs, deploy, desc = _load_pretrained(config)
    messages.append(f"pretrained: {desc}")
    cs = _choose_charset(config, dataset_dir, pre_cs, messages)
  # The NRTR branch starts untrained when the pretrained weights lack it (inference weights)
  # or when the run being resumed started that way.
  fresh_nrtr = (not any("/gtc_head/" in k for k in _flatten(pre)) if pre is not None
                else bool(resume_meta and resume_meta.get("fresh_nrtr")))
  drop = drops_nrtr(config.train, fresh_nrtr)
  model = registry.get_model(config.model.name)(num_classes=cs.num_classes, deploy=deploy,
                                                dtype=config.model.dtype,
                                                **({"with_nrtr": False} if drop else {}))
  if drop:
    messages.append("the pretrained weights have no NRTR branch: fine-tuning CTC-only (no NRTR "
                    "branch, use_guide off so the CTC loss trains the backbone); "
                    "--config.train.untrained_nrtr=train keeps PaddleOCR's guided recipe")
  elif not config.train.get("use_guide", True):
    messages.append("use_guide off: the CTC loss trains the backbone too")
  if drop or not config.train.get("use_guide", True):
    model = recognizer.without_guide(model)
  init = jax.jit(lambda r: recognizer.init_variables(
      model, r, height=config.data.height, width=config.data.width,
      text_len=config.data.max_text_length + 2))
  key = jax.random.PRNGKey(config.seed)
  if pre is not None:
    # Pretrained weights that fill every variable need no initialiser run (nor its compile):
    # the shapes alone say where each tensor goes.
    variables, report = merge_pretrained(jax.eval_shape(init, key), pre)
    if report.missing or report.reinitialised:
      variables, report = merge_pretrained(init(key), pre)
    messages.append(report.summary())
  else:
    variables = init(key)
  return Setup(model, cs, variables, deploy, messages, fresh_nrtr, drop)
