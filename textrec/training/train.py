"""Train mode: pure train/eval steps, data-parallel over every device, resumable.

  python -m textrec.main --config=configs/v4_mobile.py [--config.dataset_dir=DIR]
      [--config.output_dir=OUT] [--config.resume=True]

Data parallelism: one `jax.jit` program over a 1-D mesh with axis "data" (all devices of all
processes). The batch is sharded along "data" (NamedSharding P("data")), the train state is
replicated (P()). The step is written for the *global* batch: the loss means, the BatchNorm
statistics and the gradient are over all devices' samples, and XLA inserts the all-reduces.
So N devices compute what one device computes on the same global batch (up to summation
order), which `tests/test_parallel.py` checks. Multi-host: `jax.distributed.initialize()` when
JAX_COORDINATOR_ADDRESS (or a SLURM/Open MPI launch of several tasks) says so; each process
feeds its share of the batch (Grain shards by process) through
`jax.make_array_from_process_local_data`, and only process 0 writes files.
"""
from __future__ import annotations

import concurrent.futures
import functools
import json
import math
import os
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from textrec.training import losses
from textrec.training import train_state as ts
from textrec.models import layers

BATCH_KEYS = ("image", "label_ctc", "label_ctc_pad", "label_nrtr")


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


# ----------------------------------------------------------------------------- devices
def maybe_initialize_distributed() -> None:
  """Multi-host set-up when the environment describes one (idempotent)."""
  env = os.environ
  multi = bool(env.get("JAX_COORDINATOR_ADDRESS")) or int(env.get("SLURM_NTASKS", "1")) > 1 \
      or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
  if not multi or getattr(maybe_initialize_distributed, "_done", False):
    return
  kw = {}
  if env.get("JAX_NUM_PROCESSES"):
    kw["num_processes"] = int(env["JAX_NUM_PROCESSES"])
  if env.get("JAX_PROCESS_ID"):
    kw["process_id"] = int(env["JAX_PROCESS_ID"])
  jax.distributed.initialize(**kw)
  maybe_initialize_distributed._done = True


def make_mesh(devices=None) -> Mesh:
  """1-D mesh over all (global) devices with axis "data"."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows -> global arrays sharded along "data" (rows must divide evenly)."""
  sharding = NamedSharding(mesh, P("data"))
  n_local = len(mesh.local_devices)
  out = {}
  for k in BATCH_KEYS:
    v = np.asarray(batch[k])
    if v.shape[0] % n_local:
      raise ValueError(f"batch of {v.shape[0]} rows cannot be split over {n_local} local "
                       "devices; make the batch size a multiple of the device count")
    out[k] = jax.make_array_from_process_local_data(sharding, v)
  return out


def replicate(tree: Any, mesh: Mesh) -> Any:
  return jax.device_put(tree, NamedSharding(mesh, P()))


def jit_train_step(model, tx, mesh: Mesh, train_cfg) -> Callable:
  """train_step bound to the model/optimiser and jitted over `mesh` (state replicated)."""
  fn = functools.partial(train_step, model=model, tx=tx, ctc_weight=train_cfg.ctc_weight,
                         nrtr_weight=train_cfg.nrtr_weight, ema_decay=train_cfg.ema_decay)
  if train_cfg.get("freeze_bn", False):
    step = fn

    def fn(state, batch):  # traced inside the context: BatchNorms use their running stats
      with layers.frozen_batch_norm():
        return step(state, batch)
  repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  return jax.jit(fn, in_shardings=(repl, data), out_shardings=(repl, repl))


class StepPrograms:
  """A jitted step compiled per batch shape, ahead of time where the shape is known early.

  `start(state, batch)` lowers and compiles for the batch's shape in a background thread,
  overlapping the evaluation of the pretrained weights (main job on 2 cores: the loop waits
  38-50 s of a 61-67 s compile); calling runs the compiled program, waiting for it or
  compiling on first use.
  """

  def __init__(self, step_fn: Callable):
    self._fn = step_fn
    self._progs: dict[tuple[int, ...], Any] = {}
    self._pending: dict[tuple[int, ...], concurrent.futures.Future] = {}
    self.compile_seconds: dict[tuple[int, ...], float] = {}

  def _compile(self, shape, state, batch):
    t0 = time.time()
    prog = self._fn.lower(state, batch).compile()
    self.compile_seconds[shape] = time.time() - t0
    return prog

  def start(self, state, batch) -> None:
    shape = tuple(batch["image"].shape)
    if shape not in self._progs and shape not in self._pending:
      fut: concurrent.futures.Future = concurrent.futures.Future()

      def work():
        try:
          fut.set_result(self._compile(shape, state, batch))
        except BaseException as e:  # pylint: disable=broad-except  # re-raised by __call__
          fut.set_exception(e)

      # A daemon thread: a run that fails before its first step exits without waiting.
      threading.Thread(target=work, name="compile-train-step", daemon=True).start()
      self._pending[shape] = fut

  def __call__(self, state, batch):
    shape = tuple(batch["image"].shape)
    prog = self._progs.get(shape)
    if prog is None:
      fut = self._pending.pop(shape, None)
      prog = fut.result() if fut else self._compile(shape, state, batch)
      self._progs[shape] = prog
    return prog(state, batch)


# ----------------------------------------------------------------------------- the run
class _Log:
  """Prints and (process 0) appends to OUT/train.log; `record` appends OUT/history.jsonl."""

  def __init__(self, out_dir: str, primary: bool):
    self.primary = primary
    self.path = os.path.join(out_dir, "train.log")
    self.hist = os.path.join(out_dir, "history.jsonl")

  def __call__(self, msg: str) -> None:
    if not self.primary:
      return
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(line + "\n")

  def record(self, entry: dict) -> None:
    if self.primary:
      with open(self.hist, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _fmt_time(s: float) -> str:
  s = int(max(s, 0))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _write_json(path: str, obj: dict) -> None:
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2, ensure_ascii=False)
  os.replace(path + ".tmp", path)


class _Evaluator:
  """Evaluates variables on the config's eval split through the predict path (as evaluate
  mode, `evaluate.rotate_tall` included); the compiled programs are kept between evaluations
  (only the variables change)."""

  def __init__(self, setup, config, dataset_dir: str):
    self.setup, self.config, self.dataset_dir = setup, config, dataset_dir
    self.rec = None

  def __call__(self, variables) -> dict:
    from textrec.training import evaluate  # pylint: disable=g-import-not-at-top

    cfg = self.config.evaluate
    module, host = evaluate.inference_form(self.config.model.name, self.setup.charset.num_classes,
                                           jax.device_get(variables), self.setup.deploy)
    if self.rec is None:
      self.rec = evaluate.make_recognizer(module, host, self.setup.charset, cfg.batch_size,
                                          float(cfg.rotate_tall))
      self.items = evaluate.read_split(self.dataset_dir, cfg.split)
    else:
      self.rec.probs_fn.variables = jax.device_put(host)
    res = evaluate.evaluate_recognizer(lambda imgs: self.rec.recognize(imgs, cfg.batch_size),
                                       self.items)
    main = res["filtered" if cfg.is_filter else "case_sensitive"]
    return dict(acc=main["acc"], norm_edit_dis=main["norm_edit_dis"], num=main["num"],
                case_sensitive=res["case_sensitive"], filtered=res["filtered"])


def training_curve(history_jsonl: str, png: str) -> None:
  """Loss parts and lr per logged step, eval acc per evaluation -> a PNG (last entry per step
  wins, so a resumed run's repeated steps are drawn once)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  train, evals = {}, {}
  with open(history_jsonl, encoding="utf-8") as f:
    for line in f:
      e = json.loads(line)
      (evals if "eval_acc" in e else train)[e["step"]] = e
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  steps = sorted(train)
  for k in ("loss", "ctc", "nrtr"):
    if steps and k in train[steps[0]]:
      ax1.plot(steps, [train[s][k] for s in steps], label=k)
  ax1.set_xlabel("step")
  ax1.set_ylabel("training loss")
  ax1.set_yscale("log")
  ax1.legend(loc="upper right")
  if steps:
    ax_lr = ax1.twinx()
    ax_lr.plot(steps, [train[s]["lr"] for s in steps], "k:", lw=1)
    ax_lr.set_ylabel("lr (dotted)")
  es = sorted(evals)
  ax2.plot(es, [evals[s]["eval_acc"] for s in es], "o-", label="acc")
  ax2.plot(es, [evals[s]["eval_norm_edit_dis"] for s in es], "s--", label="norm_edit_dis")
  ax2.set_xlabel("step")
  ax2.set_ylim(0, 1)
  ax2.legend(loc="lower right")
  ax2.set_title("evaluation")
  fig.tight_layout()
  fig.savefig(png, dpi=100)
  plt.close(fig)


def run(config) -> int:
  """--config.mode=train: train (or fine-tune), checkpoint, evaluate. Returns the exit code."""
  from textrec.formats import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  from textrec.training import optim  # pylint: disable=g-import-not-at-top
  from textrec.data import pipeline  # pylint: disable=g-import-not-at-top

  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

  from textrec import cli  # pylint: disable=g-import-not-at-top

  absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax logs every save at INFO
  maybe_initialize_distributed()
  t_start = time.time()
  out = config.output_dir
  primary = jax.process_index() == 0
  os.makedirs(out, exist_ok=True)
  log = _Log(out, primary)
  if primary:  # warnings (ours about the data, third-party ones) are kept in train.log too
    cli.log_to_file(log.path)
  dataset_dir = pipeline.dataset_dir(config)
  ckpt = ckpt_lib.Checkpointer(out, config.train.keep_last)
  resume_meta = None
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
  if primary:
    _write_json(os.path.join(out, "config.json"), json.loads(config.to_json_best_effort()))
    with open(os.path.join(out, "dict.txt"), "w", encoding="utf-8") as f:
      f.write("".join(c + "\n" for c in setup.charset.chars if c != " "))

  mesh = make_mesh()
  n_dev = mesh.devices.size
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
  log(f"devices: {n_dev} ({jax.devices()[0].platform}) in {jax.process_count()} process(es); "
      f"mesh axis 'data'; per-device batch = global batch / {n_dev}")
  freeze = int(config.train.freeze_backbone_steps)
  if freeze < 0:
    freeze = spe if setup.fresh_nrtr and config.train.nrtr_weight else 0
  if freeze:
    why = ("the SVTR neck's use_guide stops CTC gradients: the backbone learns only through "
           "NRTR" if config.train.get("use_guide", True) else "its first gradients are noise")
    log(f"backbone frozen for the first {freeze} steps while the untrained NRTR branch warms "
        f"up ({why}); set --config.train.freeze_backbone_steps to change")
  tx, schedule = optim.make_optimizer(config.optim, setup.variables["params"], total, spe,
                                      freeze_backbone_steps=freeze)
  state = ts.create(setup.variables, tx, config.seed, ema=config.train.ema_decay > 0)
  state = replicate(state, mesh)
  start = 0
  best = dict(acc=-1.0, step=None)
  # Records skipped at run time (unreadable, or augmentation spoilt the label) in this
  # process's batches; kept in the checkpoint meta so a resumed run goes on counting.
  n_replaced = 0
  if resume_meta is not None:
    state, meta, start = ckpt.restore(state, data_iter)
    best = meta.get("best", best)
    n_replaced = int(meta.get("replaced_records", 0))
    log(f"resumed from step {start} (best acc so far {best['acc']:.4f})")
  step_fn = StepPrograms(jit_train_step(setup.model, tx, mesh, config.train))
  first_batch = None
  if start < total:  # its shape compiles while the pretrained weights are evaluated
    first_batch = next(data_iter)
    step_fn.start(state, shard_batch(first_batch, mesh))
  meta_base = ckpt_lib.run_meta(config.model.name, setup.deploy, setup.charset,
                                fresh_nrtr=setup.fresh_nrtr)
  eval_every = int(config.train.eval_every) or spe
  evaluator = _Evaluator(setup, config, dataset_dir)
  before = None  # the pretrained weights' accuracy, so the run shows what training gained
  if config.train.pretrained and start == 0:
    before = evaluator(state.variables)
    log(f"eval before training ({config.train.pretrained} weights): acc {before['acc']:.4f}  "
        f"norm_edit_dis {before['norm_edit_dis']:.4f}")
  window, t_win, n_img, n_timed, last_eval = [], time.time(), 0, 0, None
  stop_reason = "completed"
  prev = None
  step = start
  seen_shapes = set()
  while step < total:
    if first_batch is not None:
      batch, first_batch = first_batch, None
    else:
      batch = next(data_iter)
    n_replaced += int(np.sum(batch["replaced"]))
    t0 = time.time()
    state, metrics = step_fn(state, shard_batch(batch, mesh))
    step += 1
    shape = tuple(batch["image"].shape)
    if shape not in seen_shapes:  # a compile: keep it out of img/s and ETA
      jax.block_until_ready(metrics)
      seen_shapes.add(shape)
      log(f"compiled the train step for batch shape {shape} in "
          f"{step_fn.compile_seconds.get(shape, 0):.0f} s (waited {time.time() - t0:.0f} s "
          f"for it and the first step)")
      t_win, n_img, n_timed = time.time(), 0, 0
    else:
      n_img += int(batch["image"].shape[0]) * jax.process_count()
      n_timed += 1
    window.append(metrics)
    if prev is not None and int(prev["nonfinite"]) >= config.train.max_nonfinite:
      stop_reason = (f"stopped: {int(prev['nonfinite'])} non-finite losses in a row (at step "
                     f"{step - 1}); lower optim.lr or check the data")
      break
    prev = metrics
    if step % config.train.log_every == 0 or step == total:
      host = jax.device_get(window)
      ok = [h for h in host if h["ok"]] or host
      avg = {k: float(np.mean([h[k] for h in ok])) for k in ("loss", "ctc", "nrtr", "grad_norm")
             if k in ok[0]}
      dt = time.time() - t_win
      ips = n_img / max(dt, 1e-9)
      eta = (total - step) * dt / max(n_timed, 1)
      lr = float(schedule(step - 1))
      parts = "  ".join(f"{k} {avg[k]:.4f}" for k in ("ctc", "nrtr") if k in avg)
      bad = sum(1 for h in host if not h["ok"])
      log(f"step {step}/{total}  epoch {(step - 1) // spe + 1}  loss {avg['loss']:.4f}  "
          f"({parts})  lr {lr:.3e}  {ips:.1f} img/s  eta {_fmt_time(eta)}"
          + (f"  non-finite {bad}" if bad else "")
          + (f"  replaced records {n_replaced}" if n_replaced else ""))
      log.record(dict(step=step, epoch=(step - 1) / spe + 1, lr=lr, img_s=ips, **avg))
      window, t_win, n_img, n_timed = [], time.time(), 0, 0
    if step % eval_every == 0 or step == total:
      res = evaluator(state.variables)
      last_eval = dict(step=step, **res)
      log(f"eval step {step}: acc {res['acc']:.4f}  norm_edit_dis {res['norm_edit_dis']:.4f}  "
          f"(filtered acc {res['filtered']['acc']:.4f})")
      log.record(dict(step=step, eval_acc=res["acc"], eval_norm_edit_dis=res["norm_edit_dis"]))
      if res["acc"] > best["acc"]:
        best = dict(acc=res["acc"], norm_edit_dis=res["norm_edit_dis"], step=step)
        ckpt.save_best(step, jax.device_get(state.variables), dict(meta_base, step=step,
                                                                   metrics=res))
        log(f"new best acc {res['acc']:.4f}: saved {out}/{ckpt_lib.BEST_DIR}")
      t_win, n_img, n_timed = time.time(), 0, 0
    if step % config.train.save_every == 0 or step == total:
      ckpt.save(step, state, dict(meta_base, step=step, best=best, replaced_records=n_replaced),
                data_iter)
  ckpt.wait()
  # The last batch's arrays live in Grain's shared memory until released; holding them at exit
  # leaves the segments behind ("leaked shared_memory objects").
  batch = None
  if hasattr(data_iter, "close"):
    data_iter.close()  # stops Grain's worker processes
  n_bad = int(jax.device_get(state.nonfinite_total))
  wall = time.time() - t_start
  result = dict(
      model_name=config.model.name, done_flag=stop_reason == "completed", stop=stop_reason,
      steps=step, total_steps=total, epochs=step / spe, global_batch_first_scale=(
          info["shapes"][0][2] * jax.process_count()), devices=n_dev,
      processes=jax.process_count(), wall_seconds=round(wall, 1), nonfinite_steps=n_bad,
      replaced_records=n_replaced,
      config=os.path.join(out, "config.json"), train_log=os.path.join(out, "train.log"),
      label_dict=os.path.join(out, "dict.txt"), curve=os.path.join(out, "train_curve.png"),
      dataset_dir=os.path.abspath(dataset_dir), metrics=last_eval, pretrained_metrics=before,
      models=dict(best=dict(best, path=os.path.join(out, ckpt_lib.BEST_DIR)),
                  last=dict(step=ckpt.latest_step(),
                            path=os.path.join(out, ckpt_lib.CKPT_DIR))))
  if primary:
    _write_json(os.path.join(out, "train_result.json"), result)
    try:
      training_curve(log.hist, result["curve"])
    except Exception as e:  # a missing plot must not fail a finished run  # pylint: disable=broad-except
      log(f"training curve not drawn: {e!r}")
  ckpt.close()
  gain = f" ({best['acc'] - before['acc']:+.4f} over the pretrained weights)" if before else ""
  log(f"{stop_reason}: {step} steps in {_fmt_time(wall)}; best acc {best['acc']:.4f}{gain}; "
      f"results in {out}/train_result.json")
  if stop_reason != "completed":
    print(stop_reason, file=sys.stderr)
    return 1
  return 0
