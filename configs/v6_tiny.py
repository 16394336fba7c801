"""PP-OCRv6_tiny_rec: PPLCNetV4 (tiny, re-parameterisable) + reshape + a CTC guide layer (DW
conv 5, 1x1 conv) before the CTC fc, 6906 CTC classes (PP-OCRv6 tiny dictionary, 6904
characters); NRTR (384).
Recipe: common.ppocrv6 (PaddleOCR's yml, lr 1e-3); --config.model.deploy=True: fused form.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  return common.ppocrv6("tiny", lr=1e-3)
