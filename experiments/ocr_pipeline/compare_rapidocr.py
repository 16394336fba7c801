"""textrec's OCR pipeline vs RapidOCR 1.4.4 (rapidocr-onnxruntime: the official PP-OCRv4 det,
v2.0 cls and PP-OCRv4 rec ONNX files in onnxruntime) on ../shared/data/ocr_images.

Both run with the same settings: ours at its defaults (PaddleX's OCR pipeline for PP-OCRv4:
limit_side_len 960 / "max", ImageNet mean/std, thresh 0.3, box_thresh 0.6, unclip 2.0, no
dilation, orientation on with cls_thresh 0.9, rec score threshold 0), RapidOCR set to them
(its config.yaml differs: mean/std 0.5, use_dilation, limit_type "min" 736, box_thresh 0.5,
unclip 1.6, text_score 0.5; with "max" it also ignores limit_side_len and picks 960/1500/2000
by image size, so its resize is replaced by PaddleOCR's). `--rapidocr_defaults` instead runs
ours with RapidOCR's own config.

Boxes are matched one to one, greedily by IoU (convex quads, OpenCV); a pair counts when
IoU >= 0.8. Prints a table per image and the totals; --out writes them as JSON.

  python experiments/ocr_pipeline/compare_rapidocr.py [--images DIR] [--out results.json]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGES = os.path.join(HERE, "..", "..", "..", "shared", "data", "ocr_images")
IOU_MIN = 0.8


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--images", default=DEFAULT_IMAGES)
  ap.add_argument("--out", default="")
  ap.add_argument("--rapidocr_defaults", action="store_true")
  ap.add_argument("--det_pad_to", type=int, default=32)
  args = ap.parse_args()

  import textrec  # pylint: disable=g-import-not-at-top
  from textrec.pipelines import ocr, text_detection  # pylint: disable=g-import-not-at-top
  from textrec.pipelines.rapidocr_ref import (  # pylint: disable=g-import-not-at-top
      RAPIDOCR_DEFAULTS, RAPIDOCR_MEAN, RAPIDOCR_STD, match_boxes, rapidocr_engine)

  if args.rapidocr_defaults:
    settings, mean, std, dil = RAPIDOCR_DEFAULTS, RAPIDOCR_MEAN, RAPIDOCR_STD, True
  else:
    d = ocr.OCRParams()
    settings = {k: getattr(d, k) for k in RAPIDOCR_DEFAULTS}
    mean, std, dil = text_detection.IMAGENET_MEAN, text_detection.IMAGENET_STD, False
  pipe = textrec.create_pipeline("OCR", det_mean=mean, det_std=std, det_pad_to=args.det_pad_to,
                                 text_det_use_dilation=dil, **settings)
  ref = rapidocr_engine(settings, list(mean), list(std), dil, 0.9)
  paths = sorted(p for p in glob.glob(os.path.join(args.images, "*"))
                 if p.lower().endswith((".jpg", ".jpeg", ".png")))
  rows, tot = [], dict(ours=0, ref=0, matched=0, same_text=0)
  print(f"{'image':<14} {'ours':>5} {'ref':>5} {'matched':>8} {'same text':>10}  differing")
  for path in paths:
    res = next(pipe.predict(path))
    out, _ = ref(cv2.imread(path))
    out = out or []
    ref_polys = [np.asarray(o[0], np.float32) for o in out]
    ref_texts = [o[1] for o in out]
    pairs = match_boxes(list(res.rec_polys), ref_polys, IOU_MIN)
    same = [p for p in pairs if res.rec_texts[p[0]] == ref_texts[p[1]]]
    diff = [(res.rec_texts[i], ref_texts[j]) for i, j, _ in pairs
            if res.rec_texts[i] != ref_texts[j]]
    row = dict(image=os.path.basename(path), ours=len(res.rec_polys), ref=len(ref_polys),
               matched=len(pairs), same_text=len(same),
               min_iou=min((p[2] for p in pairs), default=None), differing=diff)
    rows.append(row)
    for k in tot:
      tot[k] += row[k]
    print(f"{row['image']:<14} {row['ours']:>5} {row['ref']:>5} {row['matched']:>8} "
          f"{row['same_text']:>10}  {diff}")
  box_rate = tot["matched"] / max(1, max(tot["ours"], tot["ref"]))
  text_rate = tot["same_text"] / max(1, tot["matched"])
  print(f"{'total':<14} {tot['ours']:>5} {tot['ref']:>5} {tot['matched']:>8} "
        f"{tot['same_text']:>10}")
  print(f"boxes matched (IoU >= {IOU_MIN}): {box_rate:.1%} of max(ours, RapidOCR); "
        f"identical text on {text_rate:.1%} of matched lines")
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(dict(date=time.strftime("%Y-%m-%d"), settings=settings,
                     rapidocr_defaults=args.rapidocr_defaults, rows=rows, totals=tot,
                     box_rate=box_rate, text_rate=text_rate), f, indent=1, ensure_ascii=False)
  return 0


if __name__ == "__main__":
  sys.exit(main())
