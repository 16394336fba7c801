"""Grouped (not depthwise) convolution on XLA:CPU: `lax.conv_general_dilated` with
feature_group_count vs one dense conv per group (what layers.conv2d's "fast" path does), on
SVTRv2's 5x5 mixer shapes, same process, alternating; max |Δ| between the two.

  .venv/bin/python scripts/bench_conv.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (B, H, W, C, groups): SVTRv2 stages 0 and 1 at 48x320, batch 6 and 1.
SHAPES = ((6, 12, 80, 128, 4), (1, 12, 80, 128, 4), (6, 6, 80, 256, 8), (1, 6, 80, 256, 8))


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--repeats", type=int, default=7)
  args = ap.parse_args()
  import jax  # pylint: disable=g-import-not-at-top

  from textrec.models import layers  # pylint: disable=g-import-not-at-top

  print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, 5x5 convs, ms (median of "
        f"{args.repeats})")
  for b, h, w, c, g in SHAPES:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, h, w, c)).astype(np.float32)
    k = rng.standard_normal((5, 5, c // g, c)).astype(np.float32)
    fns = {impl: jax.jit(lambda x, k, impl=impl: layers.conv2d(x, k, 1, 2, g, impl=impl))
           for impl in ("xla", "fast")}
    outs = {n: np.asarray(f(x, k)) for n, f in fns.items()}
    ts = {n: [] for n in fns}
    for _ in range(args.repeats):
      for n, f in fns.items():
        t = time.perf_counter()
        jax.block_until_ready(f(x, k))
        ts[n].append(time.perf_counter() - t)
    xla, fast = (1e3 * statistics.median(ts[n]) for n in ("xla", "fast"))
    d = float(np.abs(outs["xla"] - outs["fast"]).max())
    print(f"B={b} {h}x{w}x{c} groups={g}: grouped {xla:7.1f}  per group {fast:7.1f}  "
          f"{xla / fast:5.1f}x  max|Δ| {d:.1e}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
