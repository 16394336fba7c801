"""What a training run reports: the log (stdout + OUT/train.log), the metrics file
(OUT/history.jsonl, one JSON object per log line or evaluation) and the curve drawn from it."""
from __future__ import annotations

import json
import logging
import os
import time

import jax
import numpy as np

LOSS_KEYS = ("loss", "ctc", "nrtr", "grad_norm")
MARKERS_UP_TO = 50  # logged points per series drawn with markers (a short run's few points)


def fmt_time(s: float) -> str:
  """Seconds -> "1h02m" or "3m07s"."""
  s = int(max(s, 0))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _WarningsFile(logging.FileHandler):
  pass


def log_warnings_to(path: str) -> logging.Handler:
  """Also writes every logger's warnings (third-party ones included) to `path`, through the
  filters the console handlers have, instead of an earlier run's file in this process."""
  for h in [h for h in logging.root.handlers if isinstance(h, _WarningsFile)]:
    logging.root.removeHandler(h)
    h.close()
  handler = _WarningsFile(path, encoding="utf-8")
  handler.setLevel(logging.WARNING)
  handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s",
                                         "%Y-%m-%d %H:%M:%S"))
  for f in {f for h in logging.root.handlers for f in h.filters}:
    handler.addFilter(f)
  logging.root.addHandler(handler)
  return handler


class Log:
  """`log(msg)` prints and appends to OUT/train.log; `record(entry)` appends to
  OUT/history.jsonl. Only the primary process (`primary`) writes."""

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


class MetricWriter:
  """Collects each step's device scalars (`add`) and writes them per log window (`write`):
  the window's mean loss parts, lr, img/s and ETA as a log line and a history entry.

  img/s and the ETA count only timed steps since `restart_clock` (a compile or an evaluation
  restarts it)."""

  def __init__(self, log: Log, total_steps: int, steps_per_epoch: int):
    self.log, self.total, self.spe = log, total_steps, steps_per_epoch
    self._window: list[dict] = []
    self.restart_clock()

  def restart_clock(self) -> None:
    self._t0, self._images, self._timed = time.time(), 0, 0

  def add(self, metrics: dict, images: int | None) -> None:
    """One step's metrics (device scalars; "ok" says the step was finite); `images` is the
    global batch size, None for a step left out of the timing."""
    self._window.append(metrics)
    if images is not None:
      self._images += images
      self._timed += 1

  def write(self, step: int, lr: float, replaced_records: int = 0) -> None:
    """Log line + history entry for the steps added since the last write."""
    host = jax.device_get(self._window)
    ok = [h for h in host if h["ok"]] or host
    avg = {k: float(np.mean([h[k] for h in ok])) for k in LOSS_KEYS if k in ok[0]}
    dt = time.time() - self._t0
    ips = self._images / max(dt, 1e-9)
    eta = (self.total - step) * dt / max(self._timed, 1)
    parts = "  ".join(f"{k} {avg[k]:.4f}" for k in ("ctc", "nrtr") if k in avg)
    bad = sum(1 for h in host if not h["ok"])
    self.log(f"step {step}/{self.total}  epoch {(step - 1) // self.spe + 1}  "
             f"loss {avg['loss']:.4f}  ({parts})  lr {lr:.3e}  {ips:.1f} img/s  "
             f"eta {fmt_time(eta)}" + (f"  non-finite {bad}" if bad else "")
             + (f"  replaced records {replaced_records}" if replaced_records else ""))
    self.log.record(dict(step=step, epoch=(step - 1) / self.spe + 1, lr=lr, img_s=ips, **avg))
    self._window = []
    self.restart_clock()

  def write_eval(self, step: int, res: dict) -> None:
    """Log line + history entry of an evaluation (`Evaluator`'s result)."""
    self.log(f"eval step {step}: acc {res['acc']:.4f}  norm_edit_dis "
             f"{res['norm_edit_dis']:.4f}  (filtered acc {res['filtered']['acc']:.4f})")
    self.log.record(dict(step=step, eval_acc=res["acc"], eval_norm_edit_dis=res["norm_edit_dis"]))


def read_history(history_jsonl: str) -> tuple[dict[int, dict], dict[int, dict]]:
  """-> (train entries, eval entries) by step; the last entry per step wins, so a resumed
  run's repeated steps count once."""
  train, evals = {}, {}
  with open(history_jsonl, encoding="utf-8") as f:
    for line in f:
      e = json.loads(line)
      (evals if "eval_acc" in e else train)[e["step"]] = e
  return train, evals


def _plot_train(ax, train: dict[int, dict]) -> None:
  """Loss parts (log scale) and the lr (dotted, right axis) per logged step."""
  steps = sorted(train)
  marker = "o" if len(steps) <= MARKERS_UP_TO else None
  for k in ("loss", "ctc", "nrtr"):
    if steps and k in train[steps[0]]:
      ax.plot(steps, [train[s][k] for s in steps], label=k, marker=marker, ms=4)
  ax.set_xlabel("step")
  ax.set_ylabel("training loss")
  ax.set_yscale("log")
  ax.legend(loc="upper right")
  if steps:
    ax_lr = ax.twinx()
    ax_lr.plot(steps, [train[s]["lr"] for s in steps], "k:", lw=1, marker=marker, ms=2)
    ax_lr.set_ylabel("lr (dotted)")


def _plot_eval(ax, evals: dict[int, dict]) -> None:
  es = sorted(evals)
  ax.plot(es, [evals[s]["eval_acc"] for s in es], "o-", label="acc")
  ax.plot(es, [evals[s]["eval_norm_edit_dis"] for s in es], "s--", label="norm_edit_dis")
  ax.set_xlabel("step")
  ax.set_ylim(0, 1)
  ax.legend(loc="lower right")
  ax.set_title("evaluation")


def training_curve(history_jsonl: str, png: str) -> None:
  """history.jsonl -> a PNG: loss parts and lr per logged step (left), eval acc and
  norm_edit_dis per evaluation (right)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  train, evals = read_history(history_jsonl)
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  _plot_train(ax1, train)
  _plot_eval(ax2, evals)
  fig.tight_layout()
  fig.savefig(png, dpi=100)
  plt.close(fig)
