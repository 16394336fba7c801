"""Where the IC15 val errors are: filtered accuracy by crop shape, official vs fine-tuned.

  python experiments/ic15_finetune/error_analysis.py [--weights=experiments/ic15_finetune/run]

Runs both recognisers over val (the predict path, as evaluate mode) and prints filtered
accuracy ([0-9a-z], RecMetric's is_filter) per group of crops: upright text lines, crops
taller than wide (vertical or steeply rotated words, which a CTC line reader cannot read
along its width), and by crop height. `--errors=FILE` also writes every val error of the
fine-tuned weights (label, both predictions, crop size) as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from textrec.training import evaluate  # noqa: E402  pylint: disable=g-import-not-at-top
from textrec.weights import loader  # noqa: E402  pylint: disable=g-import-not-at-top

MODEL = "PP-OCRv4_mobile_rec"


def _filt(s: str) -> str:
  return re.sub("[^0-9a-z]", "", s.lower())


def predictions(weight_path: str, images) -> list[str]:
  w = loader.load_weights(MODEL, weight_path, None)
  module, variables = evaluate.inference_form(MODEL, w.num_classes, w.variables, w.deploy)
  rec = evaluate.make_recognizer(module, variables, w.charset, 32)
  return [t for t, _ in rec.recognize(images, 32)]


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data",
                                                 "ic15_rec"))
  ap.add_argument("--weights", default=os.path.join(HERE, "run"))
  ap.add_argument("--errors", default="", help="write the fine-tuned errors to this JSON file")
  args = ap.parse_args()
  items = evaluate.read_split(args.data, "val")
  images, texts = evaluate.load_records(items, 0, len(items))
  runs = {"official": predictions("", images), "fine-tuned": predictions(args.weights, images)}
  ok = {k: [_filt(p) == _filt(t) for p, t in zip(v, texts)] for k, v in runs.items()}
  groups = {
      "all": lambda h, w: True,
      "wider than tall": lambda h, w: w >= h,
      "taller than wide": lambda h, w: h > w,
      "height < 20 px": lambda h, w: h < 20,
      "height 20-39 px": lambda h, w: 20 <= h < 40,
      "height >= 40 px": lambda h, w: h >= 40,
  }
  print(f"{'crops':18s} {'n':>5s} {'share':>6s}  " + "  ".join(f"{k:>10s}" for k in runs))
  for name, pick in groups.items():
    idx = [i for i, im in enumerate(images) if pick(*im.shape[:2])]
    accs = [sum(ok[k][i] for i in idx) / max(len(idx), 1) for k in runs]
    print(f"{name:18s} {len(idx):5d} {len(idx) / len(images):6.1%}  "
          + "  ".join(f"{a:10.4f}" for a in accs))
  if not args.errors:
    return 0
  errors = [dict(index=i, label=t, fine_tuned=runs["fine-tuned"][i], official=runs["official"][i],
                 height=int(images[i].shape[0]), width=int(images[i].shape[1]))
            for i, t in enumerate(texts) if not ok["fine-tuned"][i]]
  with open(args.errors, "w", encoding="utf-8") as f:
    json.dump(errors, f, indent=1, ensure_ascii=False)
  print(f"{len(errors)} errors of the fine-tuned weights -> {args.errors}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
