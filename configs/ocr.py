"""The General OCR pipeline on whole images: document orientation (PP-LCNet_x1_0_doc_ori),
PP-OCRv5 mobile text detection, text-line orientation (PP-LCNet_x1_0_textline_ori) and
PP-OCRv5_mobile_rec (official weights), with PaddleX's OCR-pipeline settings;
--config.ocr.ocr_version=PP-OCRv4|PP-OCRv6 takes another generation's models and defaults.

Predict (prints each image's lines; saves <stem>_ocr_res_img.png and <stem>_res.json in
output/predict/, or --config.predict.output_dir=DIR; `~` works in every path):
  python -m textrec.main --config=configs/ocr.py --config.predict.input=PATH
Another recognizer or weights (any --config.model.name; Paddle inference dirs for all three):
  ... --config.model.name=PP-OCRv5_server_rec --config.predict.model_dir=DIR \
      --config.ocr.det_model_dir=DIR --config.ocr.cls_model_dir=DIR
Serve /ocr and /text-recognition over HTTP:
  python -m textrec.main --config=configs/ocr.py --config.mode=serve
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  c = common.base("")  # "" = the ocr_version's recognizer (textrec/main.py fills it in)
  c.mode = "predict"
  c.ocr = common.ocr_section()
  c.lock()
  return c
