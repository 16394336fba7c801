"""PP-OCRv5_server_rec: PPHGNetV2_B4 (text_rec) + SVTR neck (120) + CTC head (NRTR guidance in
training).

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv5/PP-OCRv5_server_rec.yml: Adam
(beta1 0.9, beta2 0.999) with L2 3e-5, cosine schedule, lr 5e-4 (multi-GPU batches of 64;
PaddleOCR warms up for 1 of 75 epochs); no RecConAug (the yml has only RecAug).

textrec does not import official v5 weights yet: it trains from scratch unless
--config.train.pretrained names PaddleOCR's weights (a PaddleX inference directory, or a
.pdparams whose unused ImageNet classifier is skipped on load).
The head's width follows the dictionary: PaddleOCR's weights need its ppocrv5_dict.txt
(18383 characters, + space + blank) as --config.data.dict_path.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("PP-OCRv5_server_rec", optim=dict(name="adam", lr=5e-4, weight_decay=3e-5),
                  data=dict(concat_prob=0.0), train=dict(pretrained=""))
  c.lock()
  return c
