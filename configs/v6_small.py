"""PP-OCRv6_small_rec: PPLCNetV4 (small, re-parameterisable) + LightSVTR neck (120, depth 2,
MLP x2), 18710 CTC classes (PP-OCRv6 dictionary, 18708 characters); NRTR (384).
Recipe: common.ppocrv6 (PaddleOCR's yml, lr 5e-4); --config.model.deploy=True: fused form.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  return common.ppocrv6("small", lr=5e-4)
