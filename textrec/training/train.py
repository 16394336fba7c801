"""Train mode: pure train/eval steps, data-parallel over every device, resumable.

  python -m textrec.main --config=configs/v4_mobile.py [--config.dataset_dir=DIR]
      [--config.output_dir=OUT] [--config.resume=True]

Data parallelism: one `jax.jit` program over a 1-D mesh with axis "data" (all devices of all
processes). The batch is sharded along "data" (NamedSharding P("data")), the train state is
replicated (P()). The step is written for the *global* batch: the loss means, the BatchNorm
statistics and the gradient are over all devices' samples, and XLA inserts the all-reduces.
So N devices compute what one device computes on the same global batch (up to summation
order), which `tests/test_parallel.py` checks. Multi-host: see `sharding`; only process 0
writes files.

`run` is a loop over small pieces: `metric_writer` (log lines, history.jsonl, the curve),
`periodic` (when the log, evaluation and checkpoint run), `evaluate.Evaluator`,
`checkpoint.Checkpointer` and `step_programs.StepPrograms` (the compiled step).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
import time
from typing import Any, Callable

from absl import logging as absl_logging
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np
import optax

from textrec.data import pipeline
from textrec.formats import checkpoint as ckpt_lib
from textrec.models import layers
from textrec.training import evaluate, losses, metric_writer, optim, periodic
from textrec.training import train_state as ts
from textrec.training.sharding import make_mesh
from textrec.training.sharding import maybe_initialize_distributed
from textrec.training.sharding import replicate
from textrec.training.sharding import shard_batch
from textrec.training.step_programs import StepPrograms


# ----------------------------------------------------------------------------- steps
def train_step(state: ts.TrainState, batch: dict[str, jax.Array], *, model, tx,
               ctc_weight: float = 1.0, nrtr_weight: float = 1.0,
               ema_decay: float = 0.0) -> tuple[ts.TrainState, dict[str, jax.Array]]:
  """One optimiser step on a (global) batch: image f32[B, H, W, 3], label_ctc i32[B, L],
  label_ctc_pad f32[B, L], label_nrtr i32[B, L + 2].

  A non-finite loss or gradient leaves params, batch_stats, opt_state and EMA unchanged and
  counts in `state.nonfinite` (consecutive) / `state.nonfinite_total`.
  """
  rng = jax.random.fold_in(state.rng, state.step)
  use_nrtr = bool(nrtr_weight)

  def loss_fn(params):
    out, mutated = model.apply(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=True,
        nrtr_targets=batch["label_nrtr"] if use_nrtr else None, mutable=["batch_stats"],
        rngs={"dropout": rng})
    loss, parts = losses.multi_loss(out, batch, ctc_weight, nrtr_weight)
    return loss, (parts, mutated["batch_stats"])

  (loss, (parts, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.tree.norm(grads)
  ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, new_opt = tx.update(grads, state.opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)
  new_ema = state.ema_params
  if state.ema_params is not None:
    new_ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
                           state.ema_params, new_params)
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
  nonfinite = jnp.where(ok, 0, state.nonfinite + 1).astype(jnp.int32)
  state = state.replace(
      step=state.step + 1, params=keep(new_params, state.params),
      batch_stats=keep(new_stats, state.batch_stats), opt_state=keep(new_opt, state.opt_state),
      ema_params=None if new_ema is None else keep(new_ema, state.ema_params),
      nonfinite=nonfinite, nonfinite_total=state.nonfinite_total + (~ok).astype(jnp.int32))
  metrics = dict(parts, grad_norm=grad_norm, nonfinite=nonfinite, ok=ok)
  return state, metrics


def eval_step(variables: dict, images: jax.Array, *, model) -> jax.Array:
  """images f32[B, H, W, 3] -> CTC probabilities f32[B, T, C] (inference form of the model)."""
  logits = model.apply(variables, images, train=False)["ctc_logits"]
  return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def jit_train_step(model, tx, mesh: Mesh, train_cfg) -> Callable:
  """train_step bound to the model/optimiser and jitted over `mesh` (state replicated)."""
  fn = functools.partial(train_step, model=model, tx=tx, ctc_weight=train_cfg.ctc_weight,
                         nrtr_weight=train_cfg.nrtr_weight, ema_decay=train_cfg.ema_decay)
  contexts = []
  if train_cfg.get("freeze_bn", False):  # BatchNorms use their running stats
    contexts.append(layers.frozen_batch_norm)
  if not train_cfg.get("dropout", True):  # Dropout and DropPath return their input
    contexts.append(layers.dropout_off)
  if contexts:
    step = fn

    def fn(state, batch):  # traced inside the contexts
      with contextlib.ExitStack() as stack:
        for c in contexts:
          stack.enter_context(c())
        return step(state, batch)
  repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(fn, in_shardings=(repl, data), out_shardings=(repl, repl))


# ----------------------------------------------------------------------------- the run
@dataclasses.dataclass
class _Run:
  """A training run: what it was built from and where it stands (`step`, `best`, ...)."""
  config: Any
  log: metric_writer.Log
  setup: ts.Setup
  dataset_dir: str
  ckpt: Any                      # checkpoint.Checkpointer
  mesh: Mesh
  data_iter: Any                 # the endless Grain iterator of host batches
  info: dict                     # pipeline's data summary (shapes, batches_per_epoch, drops)
  total: int                     # steps of the run
  schedule: Callable[[int], Any]
  state: ts.TrainState
  step_fn: StepPrograms
  evaluator: Callable[[dict], dict]
  meta_base: dict                # checkpoint metadata of every save
  step: int = 0
  best: dict = dataclasses.field(default_factory=lambda: dict(acc=-1.0, step=None))
  # Records skipped at run time (unreadable, or augmentation spoilt the label) in this
  # process's batches; kept in the checkpoint meta so a resumed run goes on counting.
  replaced: int = 0
  first_batch: Any = None        # drawn early: its shape compiles during the first evaluation
  seen_shapes: set = dataclasses.field(default_factory=set)
  before: dict | None = None     # the pretrained weights' metrics
  last_eval: dict | None = None
  stop: str = "completed"

  @property
  def spe(self) -> int:
    return int(self.info["batches_per_epoch"])


def _write_json(path: str, obj: dict) -> None:
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2, ensure_ascii=False)
  os.replace(path + ".tmp", path)


def _open_log(out: str) -> metric_writer.Log:
  os.makedirs(out, exist_ok=True)
  log = metric_writer.Log(out, jax.process_index() == 0)
  if log.primary:  # warnings (ours about the data, third-party ones) are kept in train.log too
    metric_writer.log_warnings_to(log.path)
  return log


def _build_setup(config, log, dataset_dir: str, ckpt) -> ts.Setup:
  """The model, charset and initial variables (pretrained, or those of the checkpoint to
  resume); writes the resolved OUT/config.json and OUT/dict.txt."""
  out, resume_meta = config.output_dir, None
  if config.train.resume:
    if ckpt.latest_step() is None:
      log(f"resume: no checkpoint under {out}/checkpoints yet; starting from the beginning")
    else:
      resume_meta = ckpt_lib.read_meta(os.path.join(out, ckpt_lib.CKPT_DIR))
  setup = ts.build(config, dataset_dir, resume_meta)
  for m in setup.messages:
    log(m)
  if setup.drop_nrtr:  # the resolved config (config.json) says what the run does
    config.train.nrtr_weight, config.train.use_guide = 0.0, False
  config.data.multi_scale = pipeline.multi_scale(config)
  if log.primary:
    _write_json(os.path.join(out, "config.json"), json.loads(config.to_json_best_effort()))
    with open(os.path.join(out, "dict.txt"), "w", encoding="utf-8") as f:
      f.write("".join(c + "\n" for c in setup.charset.chars if c != " "))
  return setup


def _open_data(config, setup, mesh: Mesh, dataset_dir: str, log) -> tuple[Any, dict, int]:
  """-> (endless iterator of this process's batches, data summary, total steps)."""
  data_iter, info = pipeline.train_iter_from_config(config, setup.charset,
                                                    batch_multiple=len(mesh.local_devices))
  spe = int(info["batches_per_epoch"])
  total = int(config.train.steps) or int(config.train.epochs) * spe
  drops = dict(info["drops"], **{k: n for k, n in (
      ("bad label line", info.get("skipped_lines", 0)),
      ("image not found, replaced when drawn", info.get("missing_images", 0))) if n})
  log(f"data: {dataset_dir}: {info['kept']} of {info['records']} training samples kept "
      f"(drops: {drops or 'none'}); batch shapes (W, H, B per process): "
      f"{info['shapes']}; {spe} steps/epoch; {total} steps")
  n_dev = mesh.devices.size
  log(f"devices: {n_dev} ({jax.devices()[0].platform}) in {jax.process_count()} process(es); "
      f"mesh axis 'data'; per-device batch = global batch / {n_dev}")
  return data_iter, info, total


def _freeze_steps(config, setup, spe: int, log) -> int:
  """Steps the backbone stays still (`train.freeze_backbone_steps`; < 0: an epoch when the
  NRTR branch starts untrained)."""
  freeze = int(config.train.freeze_backbone_steps)
  if freeze < 0:
    freeze = spe if setup.fresh_nrtr and config.train.nrtr_weight else 0
  if freeze:
    why = ("the SVTR neck's use_guide stops CTC gradients: the backbone learns only through "
           "NRTR" if config.train.get("use_guide", True) else "its first gradients are noise")
    log(f"backbone frozen for the first {freeze} steps while the untrained NRTR branch warms "
        f"up ({why}); set --config.train.freeze_backbone_steps to change")
  return freeze


def _prepare(config, log) -> _Run:
  """Everything before the first step: setup, data, optimiser, state (resumed if asked)."""
  dataset_dir = pipeline.dataset_dir(config)
  ckpt = ckpt_lib.Checkpointer(config.output_dir, config.train.keep_last)
  setup = _build_setup(config, log, dataset_dir, ckpt)
  mesh = make_mesh()
  data_iter, info, total = _open_data(config, setup, mesh, dataset_dir, log)
  freeze = _freeze_steps(config, setup, int(info["batches_per_epoch"]), log)
  tx, schedule = optim.make_optimizer(config.optim, setup.variables["params"], total,
                                      int(info["batches_per_epoch"]), freeze_backbone_steps=freeze)
  state = replicate(ts.create(setup.variables, tx, config.seed, ema=config.train.ema_decay > 0),
                    mesh)
  return _Run(
      config=config, log=log, setup=setup, dataset_dir=dataset_dir, ckpt=ckpt, mesh=mesh,
      data_iter=data_iter, info=info, total=total, schedule=schedule, state=state,
      step_fn=StepPrograms(jit_train_step(setup.model, tx, mesh, config.train)),
      evaluator=evaluate.Evaluator(config, setup.charset, setup.deploy, dataset_dir),
      meta_base=ckpt_lib.run_meta(config.model.name, setup.deploy, setup.charset,
                                  fresh_nrtr=setup.fresh_nrtr))


def _resume(r: _Run) -> None:
  """Restores the latest checkpoint's state, data position and counters."""
  r.state, meta, r.step = r.ckpt.restore(r.state, r.data_iter)
  r.best = meta.get("best", r.best)
  r.replaced = int(meta.get("replaced_records", 0))
  r.log(f"resumed from step {r.step} (best acc so far {r.best['acc']:.4f})")


def _start(r: _Run) -> None:
  """Starts the first batch's compile, then evaluates the pretrained weights meanwhile (so the
  run shows what training gained)."""
  if r.step < r.total:
    r.first_batch = next(r.data_iter)
    r.step_fn.start(r.state, shard_batch(r.first_batch, r.mesh))
  pretrained = r.config.train.pretrained
  if pretrained and r.step == 0:
    r.before = r.evaluator(r.state.variables)
    r.log(f"eval before training ({pretrained} weights): acc {r.before['acc']:.4f}  "
          f"norm_edit_dis {r.before['norm_edit_dis']:.4f}")


def _train_step(r: _Run, writer: metric_writer.MetricWriter) -> dict:
  """One step on the next batch; a batch shape's first step (its compile) is logged and kept
  out of img/s and the ETA."""
  batch = r.first_batch if r.first_batch is not None else next(r.data_iter)
  r.first_batch = None
  r.replaced += int(np.sum(batch["replaced"]))
  t0 = time.time()
  r.state, metrics = r.step_fn(r.state, shard_batch(batch, r.mesh))
  r.step += 1
  shape = tuple(batch["image"].shape)
  if shape in r.seen_shapes:
    writer.add(metrics, shape[0] * jax.process_count())
    return metrics
  jax.block_until_ready(metrics)
  r.seen_shapes.add(shape)
  r.log(f"compiled the train step for batch shape {shape} in "
        f"{r.step_fn.compile_seconds.get(shape, 0):.0f} s (waited {time.time() - t0:.0f} s "
        f"for it and the first step)")
  writer.restart_clock()
  writer.add(metrics, None)
  return metrics


def _evaluate(r: _Run, writer: metric_writer.MetricWriter) -> None:
  """Evaluates the current variables; a new best accuracy saves OUT/best_model."""
  res = r.evaluator(r.state.variables)
  r.last_eval = dict(step=r.step, **res)
  writer.write_eval(r.step, res)
  if res["acc"] > r.best["acc"]:
    r.best = dict(acc=res["acc"], norm_edit_dis=res["norm_edit_dis"], step=r.step)
    r.ckpt.save_best(r.step, jax.device_get(r.state.variables),
                     dict(r.meta_base, step=r.step, metrics=res))
    r.log(f"new best acc {res['acc']:.4f}: saved {r.config.output_dir}/{ckpt_lib.BEST_DIR}")


def _save(r: _Run) -> None:
  meta = dict(r.meta_base, step=r.step, best=r.best, replaced_records=r.replaced)
  r.ckpt.save(r.step, r.state, meta, r.data_iter)


def _loop(r: _Run) -> None:
  """Steps until the total (or too many non-finite losses in a row), each followed by the
  periodic actions: log line, evaluation, checkpoint."""
  cfg = r.config.train
  writer = metric_writer.MetricWriter(r.log, r.total, r.spe)
  log_at = periodic.Periodic(int(cfg.log_every), r.total)
  eval_at = periodic.Periodic(int(cfg.eval_every) or r.spe, r.total)
  save_at = periodic.Periodic(int(cfg.save_every), r.total)
  prev = None
  while r.step < r.total:
    metrics = _train_step(r, writer)
    if prev is not None and int(prev["nonfinite"]) >= cfg.max_nonfinite:
      r.stop = (f"stopped: {int(prev['nonfinite'])} non-finite losses in a row (at step "
                f"{r.step - 1}); lower optim.lr or check the data")
      break
    prev = metrics
    if log_at.due(r.step):
      writer.write(r.step, float(r.schedule(r.step - 1)), r.replaced)
    if eval_at.due(r.step):
      _evaluate(r, writer)
      writer.restart_clock()
    if save_at.due(r.step):
      _save(r)


def _result(r: _Run, wall: float) -> dict:
  """OUT/train_result.json's content."""
  out = r.config.output_dir
  return dict(
      model_name=r.config.model.name, done_flag=r.stop == "completed", stop=r.stop,
      steps=r.step, total_steps=r.total, epochs=r.step / r.spe,
      global_batch_first_scale=r.info["shapes"][0][2] * jax.process_count(),
      devices=r.mesh.devices.size, processes=jax.process_count(), wall_seconds=round(wall, 1),
      nonfinite_steps=int(jax.device_get(r.state.nonfinite_total)),
      replaced_records=r.replaced,
      config=os.path.join(out, "config.json"), train_log=os.path.join(out, "train.log"),
      label_dict=os.path.join(out, "dict.txt"), curve=os.path.join(out, "train_curve.png"),
      dataset_dir=os.path.abspath(r.dataset_dir), metrics=r.last_eval,
      pretrained_metrics=r.before,
      models=dict(best=dict(r.best, path=os.path.join(out, ckpt_lib.BEST_DIR)),
                  last=dict(step=r.ckpt.latest_step(),
                            path=os.path.join(out, ckpt_lib.CKPT_DIR))))


def _finish(r: _Run, t_start: float) -> int:
  """Waits for the checkpoints, stops the data workers, writes the result and the curve."""
  r.ckpt.wait()
  if hasattr(r.data_iter, "close"):
    r.data_iter.close()  # stops Grain's worker processes
  wall = time.time() - t_start
  result = _result(r, wall)
  if r.log.primary:
    _write_json(os.path.join(r.config.output_dir, "train_result.json"), result)
    try:
      metric_writer.training_curve(r.log.hist, result["curve"])
    except Exception as e:  # a missing plot must not fail a finished run  # pylint: disable=broad-except
      r.log(f"training curve not drawn: {e!r}")
  r.ckpt.close()
  gain = (f" ({r.best['acc'] - r.before['acc']:+.4f} over the pretrained weights)"
          if r.before else "")
  r.log(f"{r.stop}: {r.step} steps in {metric_writer.fmt_time(wall)}; best acc "
        f"{r.best['acc']:.4f}{gain}; results in {r.config.output_dir}/train_result.json")
  if r.stop != "completed":
    print(r.stop, file=sys.stderr)
    return 1
  return 0


def run(config) -> int:
  """--config.mode=train: train (or fine-tune), checkpoint, evaluate. Returns the exit code."""
  absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every save at INFO
  maybe_initialize_distributed()
  t_start = time.time()
  log = _open_log(config.output_dir)
  r = _prepare(config, log)
  if config.train.resume and r.ckpt.latest_step() is not None:
    _resume(r)
  _start(r)
  _loop(r)
  return _finish(r, t_start)
