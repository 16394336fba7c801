"""PP-OCRv6_medium_rec: PPLCNetV4 (medium, re-parameterisable) + LightSVTR neck (192, depth 2,
MLP x4), 18710 CTC classes (PP-OCRv6 dictionary, 18708 characters); NRTR (512).
Recipe: common.ppocrv6 (PaddleOCR's yml, lr 5e-4); --config.model.deploy=True: fused form.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  return common.ppocrv6("medium", lr=5e-4)
