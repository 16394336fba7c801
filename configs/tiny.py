"""A tiny recogniser (textrec/models/tiny.py) trained from scratch: for tests and smoke runs.

48x128 inputs (T = 16), labels up to 10 characters, no augmentation, one scale.
  python -m textrec.main --config=configs/tiny.py --config.dataset_dir=DIR \
      --config.output_dir=/tmp/tiny --config.train.steps=50
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("tiny_rec")
  c.train.pretrained = ""
  c.train.steps = 60
  c.train.batch_size = 8
  c.train.log_every = 10
  c.train.save_every = 20
  c.train.eval_every = 1000  # only at the end
  c.train.keep_last = 2
  c.data.width = 128
  c.data.max_text_length = 10
  c.data.multi_scale = False
  c.data.augment = False
  c.data.num_workers = 0
  c.optim.lr = 2e-3
  c.optim.warmup_epochs = 0.0
  c.optim.clip_norm = 5.0
  c.evaluate.batch_size = 8
  c.lock()
  return c
