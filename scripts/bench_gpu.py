"""Inference and train-step speed of the four recognizers on whatever accelerator JAX sees
(GPU, TPU; the CPU too, with small batches).

  .venv/bin/python scripts/bench_gpu.py [--models ...] [--batches 1,8,64,512] \
      [--train_batches 64,256] [--repeats 20]

Inference: the deploy-form forward (what create_model runs, convs as `conv_impl="auto"`
picks for the backend: XLA's own convolutions off the CPU) at [B, 3, 48, 320], random
weights (the compute does not depend on them): compile seconds, ms per batch, images/s.
Training: PaddleOCR's guided step (NRTR + CTC, training form, Adam) via
scripts/bench_train.py's `bench`: compile seconds, ms per step, images/s.
Prints the device, JAX version and date first; one JSON line per measurement after the table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

MODELS = ("PP-OCRv4_mobile_rec", "PP-OCRv4_server_rec", "ch_SVTRv2_rec", "ch_RepSVTR_rec")


def infer(name: str, batches: list[int], repeats: int) -> list[dict]:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from bench_infer import random_forward  # pylint: disable=g-import-not-at-top

  fwd = random_forward(name, 6625)
  out = []
  for b in batches:
    x = np.random.default_rng(b).uniform(-1, 1, (b, 3, 48, 320)).astype(np.float32)
    t0 = time.perf_counter()
    try:
      jax.block_until_ready(fwd(x))
    except Exception as e:  # pylint: disable=broad-except  (out of memory at large batches)
      out.append(dict(model=name, kind="infer", batch=b, error=f"{type(e).__name__}: {e}"[:200]))
      break
    compile_s = time.perf_counter() - t0
    ts = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(fwd(x))
      ts.append(time.perf_counter() - t)
    ms = 1e3 * statistics.median(ts)
    out.append(dict(model=name, kind="infer", batch=b, compile_s=round(compile_s, 2),
                    ms=round(ms, 2), img_per_s=round(1e3 * b / ms, 1)))
  return out


def train(name: str, batches: list[int], steps: int) -> list[dict]:
  from bench_train import bench  # pylint: disable=g-import-not-at-top

  out = []
  for b in batches:
    try:
      r = bench(name, "train", b, steps, nrtr=True)
    except Exception as e:  # pylint: disable=broad-except
      out.append(dict(model=name, kind="train", batch=b, error=f"{type(e).__name__}: {e}"[:200]))
      break
    out.append(dict(model=name, kind="train", batch=b, compile_s=r["compile_s"],
                    ms=r["step_ms"], img_per_s=r["img_per_s"]))
  return out


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--batches", default="1,8,64,512")
  ap.add_argument("--train_batches", default="64,256", help="'' to skip training")
  ap.add_argument("--repeats", type=int, default=20)
  ap.add_argument("--steps", type=int, default=10)
  args = ap.parse_args()
  import jax  # pylint: disable=g-import-not-at-top

  dev = jax.devices()[0]
  print(f"{time.strftime('%Y-%m-%d')}  jax {jax.__version__}  {jax.default_backend()}: "
        f"{getattr(dev, 'device_kind', dev.platform)} x{jax.device_count()}")
  rows = []
  for name in [m for m in args.models.split(",") if m]:
    rows += infer(name, [int(b) for b in args.batches.split(",") if b], args.repeats)
    rows += train(name, [int(b) for b in args.train_batches.split(",") if b], args.steps)
  print(f"{'model':22s} {'kind':6s} {'batch':>5} {'compile s':>9} {'ms':>9} {'img/s':>9}")
  for r in rows:
    if "error" in r:
      print(f"{r['model']:22s} {r['kind']:6s} {r['batch']:>5} {r['error']}")
    else:
      print(f"{r['model']:22s} {r['kind']:6s} {r['batch']:>5} {r['compile_s']:9.2f} "
            f"{r['ms']:9.2f} {r['img_per_s']:9.1f}")
  for r in rows:
    print(json.dumps(r))
  return 0


if __name__ == "__main__":
  sys.exit(main())
