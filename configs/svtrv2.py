"""ch_SVTRv2_rec: SVTRv2 (dims 128/256/384, depths 6/6/6) + SVTR neck (256) + CTC head
(NRTR guidance, 2 decoder layers, in training).

Hyper-parameters as PaddleOCR's configs/rec/SVTRv2/ch_SVTRv2_rec.yml: AdamW (beta1 0.9,
beta2 0.999, eps 1e-8), weight decay 0.05 except 1-D parameters and names containing "norm"
(`one_dim_param_no_weight_decay`, `no_weight_decay_name: norm`), the CTC fc with its coupled
L2 1e-5 as well, cosine schedule, lr 1e-3 (8 GPUs x 192 images) after a 5-epoch warm-up, no
clipping; drop path 0.1 in the backbone.

No official weights ship in a PyPI package for this model: it trains from scratch unless
--config.train.pretrained names PaddleOCR's weights (.pdparams or an inference directory).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("ch_SVTRv2_rec", optim=common.paddle_recipe("adamw", 1e-3, 0.05),
                  train=dict(pretrained=""))
  c.lock()
  return c
