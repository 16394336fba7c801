"""PP-OCRv4_mobile_rec: PPLCNetV3 (x0.95) + SVTR neck + CTC head (NRTR guidance in training).

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec.yml.

Run (fine-tunes the official weights on the embedded demo dataset, then evaluates):
  python -m textrec.main --config=configs/v4_mobile.py
Predict (PATH: an image, a directory or a comma list; results in output/predict/, or
--config.predict.output_dir=DIR; `~` works in every path):
  python -m textrec.main --config=configs/v4_mobile.py --config.mode=predict \
      --config.predict.input=PATH
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("PP-OCRv4_mobile_rec")
  c.optim.name = "adam"
  # PaddleOCR's yml trains from scratch at 5e-4 on multi-GPU batches. Fine-tuning the
  # official weights at batch 16 for one epoch of the demo dataset, 2e-4 with the BatchNorms'
  # pretrained statistics kept (freeze_bn, as experiments/ic15_finetune found best) did best
  # of 5e-4, 2e-4 and 2e-4 + freeze_bn (experiments/benchmarks/README.md has the runs).
  c.optim.lr = 2e-4
  c.train.freeze_bn = True
  c.optim.weight_decay = 3e-5
  c.lock()
  return c
