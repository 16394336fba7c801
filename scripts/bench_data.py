"""Images/s of the training input pipeline (decode + RecConAug + RecAug + multi-scale resize +
label encoding + batching).

  python scripts/bench_data.py [--dataset DIR] [--batch 16] [--batches 40] [--workers 0,2]
                               [--model PP-OCRv4_mobile_rec --steps 5 [--model_train]]

With --model it also times the model at 48x320: the jitted inference forward (an upper bound
of the train step's rate: a step also runs the backward pass), or with --model_train
jit(value_and_grad) of the CTC + NRTR loss; compare with the loader's images/s.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from textrec import charset  # noqa: E402
from textrec.data import demo, labels, pipeline, source  # noqa: E402


def bench(src, enc, batch: int, batches: int, workers: int, threads: int, augment_on: bool
          ) -> float:
  it, _ = pipeline.train_iter(src, enc, batch, seed=0, num_workers=workers,
                              num_threads=threads, augment_on=augment_on, shard=(0, 1))
  next(it)  # start-up (worker processes, first batch) is not counted
  n, t0 = 0, time.perf_counter()
  for _ in range(batches):
    n += next(it)["image"].shape[0]
  return n / (time.perf_counter() - t0)


def bench_model(name: str, it, steps: int, train: bool) -> float:
  """images/s of the model at 48x320 on batches from `it`: jit(value_and_grad(multi_loss))
  when `train`, else the jitted inference forward (an upper bound of the train-step rate)."""
  import jax
  import jax.numpy as jnp
  from textrec.training import losses
  from textrec.models import registry
  import textrec.models  # noqa: F401  registers the models
  from textrec.models import recognizer
  batch = next(it)
  model = registry.get_model(name)(num_classes=6625)
  v = recognizer.init_variables(model, jax.random.key(0), batch=2)
  b = {k: jnp.asarray(batch[k]) for k in ("image", "label_ctc", "label_ctc_pad", "label_nrtr")}

  def loss_fn(params, b):
    out, _ = model.apply({"params": params, "batch_stats": v["batch_stats"]}, b["image"],
                         train=True, nrtr_targets=b["label_nrtr"], mutable=["batch_stats"],
                         rngs={"dropout": jax.random.key(1)})
    return losses.multi_loss(out, b)[0]

  if train:
    step = jax.jit(jax.value_and_grad(loss_fn))
    run = lambda: step(v["params"], b)
  else:
    fwd = jax.jit(lambda variables, x: model.apply(variables, x, train=False))
    run = lambda: fwd(v, b["image"])
  jax.block_until_ready(run())  # compile
  t0 = time.perf_counter()
  for _ in range(steps):
    jax.block_until_ready(run())
  return steps * batch["image"].shape[0] / (time.perf_counter() - t0)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--dataset", default="")
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--batches", type=int, default=40)
  ap.add_argument("--workers", default="0,2")
  ap.add_argument("--threads", type=int, default=1)
  ap.add_argument("--model", default="")
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--model_train", action="store_true",
                  help="time value_and_grad of the loss instead of the inference forward")
  a = ap.parse_args()
  d = a.dataset or demo.demo_dataset_dir()
  src, _ = source.open_split(d, "train")
  enc = labels.LabelEncoder(charset.load_dict(os.path.join(d, "dict.txt")), 25)
  print(f"dataset {d}: {len(src)} records, cores {os.cpu_count()}")
  for w in (int(x) for x in a.workers.split(",")):
    for aug in (True, False):
      r = bench(src, enc, a.batch, a.batches, w, a.threads, aug)
      print(f"workers={w} threads={a.threads} augment={aug}: {r:.0f} images/s")
  if a.model:
    it, _ = pipeline.train_iter(src, enc, a.batch, multi_scale=False, shard=(0, 1))
    what = "train step (fwd+bwd)" if a.model_train else "inference forward"
    try:
      r = bench_model(a.model, it, a.steps, a.model_train)
      print(f"{a.model} {what}, batch {a.batch}, 48x320: {r:.1f} images/s")
    except Exception as e:  # noqa: BLE001 - report and keep the loader numbers
      print(f"{a.model} {what}: failed: {type(e).__name__}: {str(e)[:300]}")
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
