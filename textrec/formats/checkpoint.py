"""Orbax checkpoints of training runs, and loading their variables for inference.

Layout under the run's output dir:
  OUT/checkpoints/<step>/state   TrainState (params, batch_stats, opt_state, ema_params, step,
                                 rng, non-finite counters) as an Orbax pytree
  OUT/checkpoints/<step>/data    the Grain iterator state (one file per process)
  OUT/checkpoints/<step>/meta    JSON: step, epoch, metrics, model name/form, dictionary
  OUT/best_model/<step>/variables + meta   the best-by-acc inference variables
Orbax writes each step into a temporary directory and renames it when complete, so a killed
run leaves only whole checkpoints; `keep_last` of them are kept.
"""
from __future__ import annotations

import os
from typing import Any

import flax
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from textrec.charset import Charset

CKPT_DIR = "checkpoints"
BEST_DIR = "best_model"


def _manager(directory: str, item_names: tuple[str, ...], max_to_keep: int | None,
             read_only: bool = False) -> ocp.CheckpointManager:
  # read_only with Orbax's default save_interval_steps (1) makes Orbax log a warning that
  # it resets it to 0 at every load: give it 0 for a reader.
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                         read_only=read_only,
                                         save_interval_steps=0 if read_only else 1)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_names=item_names)


def _data_args(iterator, restore: bool):
  if iterator is None:
    return None
  return (grain.checkpoint.CheckpointRestore(iterator) if restore
          else grain.checkpoint.CheckpointSave(iterator))


class Checkpointer:
  """Keep-last-N training checkpoints plus the best-by-acc inference variables."""

  def __init__(self, out_dir: str, keep_last: int = 3):
    self.out_dir = out_dir
    self.train = _manager(os.path.join(out_dir, CKPT_DIR), ("state", "data", "meta"),
                          max_to_keep=max(1, keep_last))
    self.best = _manager(os.path.join(out_dir, BEST_DIR), ("variables", "meta"), max_to_keep=1)

  def latest_step(self) -> int | None:
    return self.train.latest_step()

  def save(self, step: int, state, meta: dict, data_iter=None, force: bool = False) -> None:
    items = dict(state=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
                 meta=ocp.args.JsonSave(meta))
    if data_iter is not None:
      items["data"] = _data_args(data_iter, restore=False)
    self.train.save(step, args=ocp.args.Composite(**items), force=force)

  def restore(self, state_template, data_iter=None, step: int | None = None):
    """Restores into the shapes/shardings of `state_template`; returns (state, meta, step)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint under {os.path.join(self.out_dir, CKPT_DIR)}")

    def abstract(x):
      sharding = getattr(x, "sharding", None)
      return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)

    target = jax.tree.map(abstract, flax.serialization.to_state_dict(state_template))
    items = dict(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
    if data_iter is not None:
      items["data"] = _data_args(data_iter, restore=True)
    out = self.train.restore(step, args=ocp.args.Composite(**items))
    state = flax.serialization.from_state_dict(state_template, out["state"])
    return state, dict(out["meta"]), step

  def save_best(self, step: int, variables: dict, meta: dict) -> None:
    """Replaces OUT/best_model with these inference variables {"params", "batch_stats"}."""
    self.best.save(step, args=ocp.args.Composite(
        variables=ocp.args.StandardSave(variables), meta=ocp.args.JsonSave(meta)), force=True)

  def wait(self) -> None:
    self.train.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.train.close()
    self.best.close()


def run_meta(model_name: str, deploy: bool, charset: Charset, **extra) -> dict:
  """The JSON meta stored with every checkpoint (what inference needs to rebuild the model:
  `registry.get_model(model)(num_classes=num_classes, deploy=deploy)` and the dictionary)."""
  return dict(model=model_name, deploy=bool(deploy), chars=list(charset.chars),
              num_classes=charset.num_classes, **extra)


def _resolve(path: str) -> tuple[str, int, str]:
  """A run dir, a manager dir or a step dir -> (manager dir, step, item name)."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f"checkpoint directory not found: {path}")
  for sub in (BEST_DIR, CKPT_DIR):  # a run's output dir: prefer its best model
    if os.path.isdir(os.path.join(path, sub)) and _steps(os.path.join(path, sub)):
      return _resolve(os.path.join(path, sub))
  for item in ("variables", "state"):
    if os.path.isdir(os.path.join(path, item)):  # a step dir
      return os.path.dirname(path), int(os.path.basename(path)), item
  steps = _steps(path)
  if not steps:
    raise FileNotFoundError(f"{path}: no Orbax checkpoint (expected <step>/variables or "
                            "<step>/state, or a run dir with best_model/ or checkpoints/)")
  step = max(steps)
  item = "variables" if os.path.isdir(os.path.join(path, str(step), "variables")) else "state"
  return path, step, item


def _steps(directory: str) -> list[int]:
  return [int(d) for d in os.listdir(directory)
          if d.isdigit() and os.path.isdir(os.path.join(directory, d))]


def read_meta(path: str) -> dict:
  """The meta JSON of the checkpoint `load_variables(path)` would load."""
  mdir, step, _ = _resolve(path)
  with _manager(mdir, ("meta",), None, read_only=True) as m:
    return dict(m.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])


def load_variables(path: str) -> tuple[dict[str, Any], Charset]:
  """Inference variables and dictionary from a run dir, best_model/, checkpoints/ or a step.

  Returns ({"params", "batch_stats"} as numpy arrays, Charset). From a training checkpoint the
  EMA params are used when the run kept them. `read_meta(path)` gives the model name and form.
  """
  mdir, step, item = _resolve(path)
  with _manager(mdir, (item, "meta"), None, read_only=True) as m:
    out = m.restore(step, args=ocp.args.Composite(
        **{item: ocp.args.StandardRestore(), "meta": ocp.args.JsonRestore()}))
  tree, meta = out[item], out["meta"]
  if item == "state":
    params = tree.get("ema_params") or tree["params"]
    tree = {"params": params, "batch_stats": tree.get("batch_stats") or {}}
  variables = {"params": tree["params"], "batch_stats": tree.get("batch_stats") or {}}
  return jax.tree.map(np.asarray, variables), Charset(tuple(meta["chars"]))


def load_charset(path: str) -> Charset:
  """The dictionary stored with the checkpoint `load_variables(path)` would load."""
  return Charset(tuple(read_meta(path)["chars"]))
