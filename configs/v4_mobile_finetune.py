"""Fine-tuning the official PP-OCRv4_mobile_rec weights on a small set: configs/v4_mobile.py
(PaddleOCR's recipe, made for training on large data) with the values that did best when
fine-tuning on few images: lr 2e-4 after a 0.2-epoch warm-up, gradients clipped at 10, the
BatchNorms' pretrained statistics kept (freeze_bn; experiments/ic15_finetune and
experiments/benchmarks/README.md have the runs).

The README's main job (fine-tunes on the embedded demo dataset, then evaluates):
  python -m textrec.main --config=configs/v4_mobile_finetune.py
Your data: --config.dataset_dir=DIR (PaddleX's layout); IC15-sized sets also liked
--config.optim.lr=1e-4 --config.data.augment_prob=0.2 --config.data.concat_prob=0.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import v4_mobile  # noqa: E402


def get_config():
  c = v4_mobile.get_config()
  with c.unlocked():
    c.optim.update(lr=2e-4, warmup_epochs=0.2, clip_norm=10.0)
    c.train.freeze_bn = True
  return c
