"""Saves a grid PNG of augmented training samples (RecConAug + RecAug), for a person to look at.

  python scripts/show_augment.py [--dataset DIR] [--out augment_grid.png] [--n 8] [--variants 5]

Column 0: the original crop; the other columns: independent augmentations. Default dataset: the
embedded demo dataset.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from textrec.data import augment, demo, pipeline, source  # noqa: E402

ROW_H = 48


def _row(imgs, width):
  cells = []
  for im in imgs:
    w = max(1, min(width, round(im.shape[1] * ROW_H / im.shape[0])))
    cell = np.full((ROW_H, width, 3), 255, np.uint8)
    cell[:, :w] = cv2.resize(im, (w, ROW_H))
    cells.append(cell)
    cells.append(np.full((ROW_H, 4, 3), 128, np.uint8))
  return np.concatenate(cells, 1)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--dataset", default="")
  ap.add_argument("--split", default="train")
  ap.add_argument("--out", default="augment_grid.png")
  ap.add_argument("--n", type=int, default=8)
  ap.add_argument("--variants", type=int, default=5)
  ap.add_argument("--seed", type=int, default=0)
  a = ap.parse_args()
  src, _ = source.open_split(a.dataset or demo.demo_dataset_dir(), a.split)
  rng = np.random.default_rng(a.seed)

  def load(i):
    rec = src[int(i)]
    return pipeline.decode_image(rec["image"], rec["where"]), rec["text"]

  rows = []
  for i in rng.choice(len(src), min(a.n, len(src)), replace=False):
    img, text = load(i)
    outs = [img]
    for _ in range(a.variants):
      x, t = augment.rec_con_aug(img, text, rng, lambda r: load(r.integers(len(src))))
      outs.append(augment.rec_aug(x, rng))
    rows.append(_row(outs, 320))
    rows.append(np.full((4, rows[-1].shape[1], 3), 128, np.uint8))
  cv2.imwrite(a.out, np.concatenate(rows, 0))
  print(f"wrote {a.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
