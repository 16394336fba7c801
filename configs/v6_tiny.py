"""PP-OCRv6_tiny_rec: PPLCNetV4 (tiny, re-parameterisable) + reshape + a CTC guide layer (DW conv 5, 1x1 conv) before the CTC fc + CTC head,
6906 CTC classes (PP-OCRv6 tiny dictionary, 6904 characters); NRTR guidance (384) in training. `--config.model.deploy=True` runs the fused form.

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv6/PP-OCRv6_tiny_rec.yml: Adam (beta1 0.9,
beta2 0.999) with L2 3e-5 (1e-5 on the CTC fc), cosine schedule, lr 1e-3 (multi-GPU batches;
PaddleOCR warms up for 5 of 100 epochs), RecAug + RecConAug, multi-scale heights 32/48/64.

textrec does not import official v6 weights yet: it trains from scratch unless
--config.train.pretrained names PaddleOCR's weights (a .pdparams, with its dictionary as
--config.data.dict_path).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("PP-OCRv6_tiny_rec", optim=dict(name="adam", lr=1e-3, weight_decay=3e-5),
                  train=dict(pretrained=""))
  c.lock()
  return c
