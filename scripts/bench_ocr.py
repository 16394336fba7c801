"""Seconds per image of the OCR pipeline: textrec vs the onnxruntime reference (the
generation's official ONNX files with PaddleX's steps: textrec/pipelines/rapidocr_ref.py
ReferenceOCR, 2 onnxruntime threads), same process, same images, both at the generation's
defaults, alternating passes.

Prints per image and in total the mean seconds of the warm passes, the ratio textrec /
reference, and textrec's first (compiling) pass.

  python scripts/bench_ocr.py [--ocr_version PP-OCRv5] [--images DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGES = os.path.join(HERE, "..", "..", "shared", "data", "ocr_images")


def _timed(fn, images) -> list[float]:
  out = []
  for img in images:
    t0 = time.perf_counter()
    fn(img)
    out.append(time.perf_counter() - t0)
  return out


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--ocr_version", default="PP-OCRv5")
  ap.add_argument("--images", default=DEFAULT_IMAGES)
  ap.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--det_pad_to", type=int, default=32)
  args = ap.parse_args()

  import textrec  # pylint: disable=g-import-not-at-top
  from textrec.pipelines import rapidocr_ref  # pylint: disable=g-import-not-at-top

  paths = sorted(p for p in glob.glob(os.path.join(args.images, "*"))
                 if p.lower().endswith((".jpg", ".jpeg", ".png")))
  paths = paths[:args.limit] if args.limit else paths
  images = [cv2.imread(p) for p in paths]
  t0 = time.perf_counter()
  pipe = textrec.create_pipeline("OCR", ocr_version=args.ocr_version, det_pad_to=args.det_pad_to)
  load_s = time.perf_counter() - t0
  ref = rapidocr_ref.ReferenceOCR(args.ocr_version)
  ours_fn = lambda img: next(pipe.predict(img))  # noqa: E731
  first = _timed(ours_fn, images)
  _timed(ref, images)  # its warm-up pass
  ours, theirs = [], []
  for _ in range(args.repeats):  # alternating passes
    ours.append(_timed(ours_fn, images))
    theirs.append(_timed(ref, images))
  a, b = np.mean(ours, axis=0), np.mean(theirs, axis=0)
  print(f"# bench_ocr {time.strftime('%Y-%m-%d')} {args.ocr_version} {platform.machine()} "
        f"{os.cpu_count()} CPUs; {len(images)} images from {os.path.relpath(args.images)}; "
        f"{args.repeats} warm passes each; textrec load {load_s:.1f} s, detector shapes "
        f"compiled {pipe.detector.num_compiled}")
  print(f"{'image':<16} {'textrec s':>10} {'reference s':>12} {'ratio':>6} {'textrec 1st':>12}")
  for p, x, y, f in zip(paths, a, b, first):
    print(f"{os.path.basename(p):<16} {x:>10.3f} {y:>12.3f} {x / y:>6.2f} {f:>12.3f}")
  print(f"{'total':<16} {a.sum():>10.3f} {b.sum():>12.3f} {a.sum() / b.sum():>6.2f} "
        f"{sum(first):>12.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
