"""Run a grid of training configs one after another and collect their final metrics.

  python scripts/sweep.py --config=configs/v4_mobile.py --output_dir=sweeps/lr \
      --grid="optim.lr=1e-4,2e-4,5e-4" --grid="train.epochs=2,4" \
      --set=dataset_dir=/data/ic15_rec
  python scripts/sweep.py ... --gpus_per_run=1   # run concurrently, one GPU each

Each run is `python -m textrec.main --config=... --config.output_dir=OUT/<run name>
--config.<key>=<value> ...` in its own process (its own XLA state), and its
OUT/<run name>/train_result.json feeds one row of OUT/sweep.md and OUT/sweep.csv.
With --gpus_per_run=K, runs go K GPUs each (CUDA_VISIBLE_DEVICES) side by side.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
  """["a.b=1,2", "c=x"] -> [("a.b", ["1", "2"]), ("c", ["x"])]."""
  out = []
  for s in specs:
    if "=" not in s:
      raise SystemExit(f"--grid {s!r}: expected key=v1,v2,...")
    k, v = s.split("=", 1)
    out.append((k.strip(), [x.strip() for x in v.split(",") if x.strip()]))
  return out


def run_name(combo: dict[str, str]) -> str:
  return "_".join(f"{k.split('.')[-1]}-{v}" for k, v in combo.items()).replace("/", "-") or "run"


def command(config: str, out: str, combo: dict[str, str], fixed: list[str]) -> list[str]:
  cmd = [sys.executable, "-m", "textrec.main", f"--config={config}",
         f"--config.output_dir={out}"]
  cmd += [f"--config.{s}" for s in fixed]
  cmd += [f"--config.{k}={v}" for k, v in combo.items()]
  return cmd


def collect(out: str) -> dict:
  path = os.path.join(out, "train_result.json")
  if not os.path.isfile(path):
    return {}
  r = json.load(open(path, encoding="utf-8"))
  m = r.get("metrics") or {}
  return dict(acc=m.get("acc"), norm_edit_dis=m.get("norm_edit_dis"),
              filtered_acc=(m.get("filtered") or {}).get("acc"),
              best_acc=r["models"]["best"].get("acc"), best_step=r["models"]["best"].get("step"),
              steps=r.get("steps"), wall_s=r.get("wall_seconds"), stop=r.get("stop"))


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--config", required=True)
  ap.add_argument("--output_dir", required=True)
  ap.add_argument("--grid", action="append", default=[], help="key=v1,v2,... (repeatable)")
  ap.add_argument("--set", action="append", default=[], help="key=value for every run")
  ap.add_argument("--gpus_per_run", type=int, default=0)
  args = ap.parse_args()
  grid = parse_grid(args.grid)
  keys = [k for k, _ in grid]
  combos = [dict(zip(keys, vals)) for vals in itertools.product(*[v for _, v in grid])]
  os.makedirs(args.output_dir, exist_ok=True)
  jobs = [(c, os.path.join(args.output_dir, run_name(c))) for c in combos]
  print(f"{len(jobs)} runs")
  slots = [None]
  if args.gpus_per_run:
    import jax  # pylint: disable=g-import-not-at-top
    n = len([d for d in jax.devices() if d.platform == "gpu"])
    k = args.gpus_per_run
    slots = [",".join(str(i) for i in range(s, s + k)) for s in range(0, n - k + 1, k)] or [None]
  rows, running, pending = [], {}, list(jobs)
  while pending or running:
    free = [s for s in slots if s not in running.values()]
    while pending and free:
      combo, out = pending.pop(0)
      slot = free.pop(0)
      env = dict(os.environ)
      if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
      log = open(os.path.join(args.output_dir, run_name(combo) + ".log"), "w")
      p = subprocess.Popen(command(args.config, out, combo, args.set), cwd=REPO, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
      running[p] = slot
      p.combo, p.out, p.t0 = combo, out, time.time()  # type: ignore[attr-defined]
      print(f"started {run_name(combo)} (devices {slot or 'all'})", flush=True)
    for p in list(running):
      if p.poll() is not None:
        del running[p]
        row = dict(run=run_name(p.combo), **p.combo, exit=p.returncode, **collect(p.out))
        rows.append(row)
        print(f"finished {row['run']}: exit {p.returncode}, acc {row.get('acc')}", flush=True)
    time.sleep(1)
  cols = ["run", *keys, "exit", "acc", "norm_edit_dis", "filtered_acc", "best_acc", "best_step",
          "steps", "wall_s", "stop"]
  with open(os.path.join(args.output_dir, "sweep.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
  fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str("" if v is None else v)
  table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  table += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
  open(os.path.join(args.output_dir, "sweep.md"), "w").write("\n".join(table) + "\n")
  print("\n".join(table))
  return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
