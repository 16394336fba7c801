"""PP-OCRv4_server_rec: PPHGNet_small + SVTR neck (120) + CTC head (NRTR guidance in training).

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv4/PP-OCRv4_server_rec.yml: Adam
(beta1 0.9, beta2 0.999) with L2 3e-5 (0 on the backbone's BatchNorms, 1e-5 on the CTC fc),
cosine schedule, lr 1e-3 (8 GPUs x 128 images) after a 5-epoch warm-up, no clipping.

No official weights ship in a PyPI package for this model: it trains from scratch unless
--config.train.pretrained names PaddleOCR's weights (.pdparams or an inference directory).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("PP-OCRv4_server_rec", optim=common.paddle_recipe("adam", 1e-3, 3e-5),
                  train=dict(pretrained=""))
  c.lock()
  return c
