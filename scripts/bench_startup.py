"""First-pass cost: a fresh process predicting mixed-width crops, empty vs filled caches.

Each run is a new Python process (as a user's script is) that creates the model, predicts
`--n` crops once (the first pass: compiles or loads every shape it meets) and once more (the
steady state), and reports both. Run 1 uses an empty cache directory ($TEXTREC_CACHE), run 2
the same directory again: the compiled programs kept in $TEXTREC_CACHE/programs
(textrec.runtime.programs) and JAX's persistent compile cache. The
crops are IC15 val crops, every k-th one tiled k = 1..6 times side by side so the widths
span several buckets, as lines of a page do.

  .venv/bin/python scripts/bench_startup.py [--n 1000] [--batch_size 6]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def child(ic15: str, n: int, batch_size: int, model: str) -> None:
  import cv2  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  t_start = time.perf_counter()
  lines = (pathlib.Path(ic15) / "val.txt").read_text(encoding="utf-8").splitlines()
  crops = []
  for i in range(n):
    img = cv2.imread(str(pathlib.Path(ic15) / lines[i % len(lines)].split("\t")[0]))
    crops.append(np.concatenate([img] * (i % 6 + 1), axis=1))
  import textrec  # pylint: disable=g-import-not-at-top

  t0 = time.perf_counter()
  m = textrec.create_model(model, batch_size=batch_size)
  t1 = time.perf_counter()
  first = [r.rec_text for r in m.predict(crops, batch_size=batch_size)]
  t2 = time.perf_counter()
  second = [r.rec_text for r in m.predict(crops, batch_size=batch_size)]
  t3 = time.perf_counter()
  assert first == second
  print(json.dumps(dict(import_and_read=t0 - t_start, load=t1 - t0, first=t2 - t1,
                        steady=t3 - t2, shapes=m.probs_fn.num_compiled)))


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--ic15", default=str(REPO.parent / "shared" / "data" / "ic15_rec"))
  ap.add_argument("--n", type=int, default=1000)
  ap.add_argument("--batch_size", type=int, default=6)
  ap.add_argument("--model", default="PP-OCRv4_mobile_rec")
  ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    child(args.ic15, args.n, args.batch_size, args.model)
    return 0
  with tempfile.TemporaryDirectory() as cache:
    official = os.path.join(os.path.expanduser("~"), ".cache", "textrec", "official")
    os.makedirs(os.path.join(cache, "official"), exist_ok=True)
    if os.path.isdir(official):  # the imported weights are not what is measured
      for d in os.listdir(official):
        os.symlink(os.path.join(official, d), os.path.join(cache, "official", d))
    env = dict(os.environ, TEXTREC_CACHE=cache)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {args.model}, {args.n} "
          f"mixed-width crops, batch {args.batch_size}")
    for label in ("cold cache", "warm cache"):
      out = subprocess.run([sys.executable, __file__, "--child", f"--ic15={args.ic15}",
                            f"--n={args.n}", f"--batch_size={args.batch_size}",
                            f"--model={args.model}"], env=env, capture_output=True, text=True,
                           check=False)
      if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
      r = json.loads(out.stdout.strip().splitlines()[-1])
      print(f"{label}: first pass {r['first']:.1f} s ({1e3 * r['first'] / args.n:.1f} ms/img), "
            f"steady {r['steady']:.1f} s ({1e3 * r['steady'] / args.n:.1f} ms/img): "
            f"{r['first'] / r['steady']:.2f}x; model load {r['load']:.1f} s; "
            f"{r['shapes']} compiled shapes")
  return 0


if __name__ == "__main__":
  sys.exit(main())
