"""Seconds per image of the OCR pipeline: textrec vs RapidOCR 1.4.4 (official ONNX models in
onnxruntime at its default threads), same process, same images, same settings (ours at its
defaults, RapidOCR set to them: textrec/pipelines/rapidocr_ref.py), alternating passes.

Prints per stage (detection incl. pre/post-processing / orientation / recognition incl.
cropping) the mean seconds per image of the warm passes, the ratio textrec / RapidOCR, and
textrec's first (compiling) pass.

  python scripts/bench_ocr.py [--images DIR] [--repeats 3]
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


def _ours(pipe, images) -> dict[str, float]:
  t = dict(det=0.0, cls=0.0, rec=0.0, total=0.0)
  for img in images:
    t0 = time.perf_counter()
    res = next(pipe.predict(img))
    t["total"] += time.perf_counter() - t0
    for k, v in res.timings.items():
      t[k] += v
  return t


def _rapidocr(eng, images) -> dict[str, float]:
  t = dict(det=0.0, cls=0.0, rec=0.0, total=0.0)
  for img in images:
    t0 = time.perf_counter()
    _, elapse = eng(img)
    t["total"] += time.perf_counter() - t0
    if elapse:
      for k, v in zip(("det", "cls", "rec"), elapse):
        t[k] += v
  return t


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--images", default=DEFAULT_IMAGES)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--det_pad_to", type=int, default=32)
  args = ap.parse_args()

  import textrec  # pylint: disable=g-import-not-at-top
  from textrec.pipelines import ocr, rapidocr_ref, text_detection  # pylint: disable=g-import-not-at-top

  paths = sorted(p for p in glob.glob(os.path.join(args.images, "*"))
                 if p.lower().endswith((".jpg", ".jpeg", ".png")))
  images = [cv2.imread(p) for p in paths]
  t0 = time.perf_counter()
  pipe = textrec.create_pipeline("OCR", det_pad_to=args.det_pad_to)
  load_s = time.perf_counter() - t0
  d = ocr.OCRParams()
  eng = rapidocr_ref.rapidocr_engine({k: getattr(d, k) for k in rapidocr_ref.RAPIDOCR_DEFAULTS},
                                     text_detection.IMAGENET_MEAN, text_detection.IMAGENET_STD)
  first = _ours(pipe, images)
  _rapidocr(eng, images)  # its warm-up pass
  ours, ref = [], []
  for _ in range(args.repeats):  # alternating passes
    ours.append(_ours(pipe, images))
    ref.append(_rapidocr(eng, images))
  n = len(images)
  mean = lambda runs, k: float(np.mean([r[k] for r in runs])) / n
  print(f"# bench_ocr {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} CPUs; "
        f"{n} images from {os.path.relpath(args.images)}; {args.repeats} warm passes each; "
        f"textrec load {load_s:.1f} s, detector shapes compiled {pipe.detector.num_compiled}")
  print(f"{'stage':<8} {'textrec s/img':>14} {'RapidOCR s/img':>15} {'ratio':>6} "
        f"{'textrec 1st pass':>17}")
  for k in ("det", "cls", "rec", "total"):
    a, b = mean(ours, k), mean(ref, k)
    print(f"{k:<8} {a:>14.3f} {b:>15.3f} {a / b if b else float('nan'):>6.2f} "
          f"{first[k] / n:>17.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
