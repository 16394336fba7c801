"""PP-OCRv4_mobile_rec: PPLCNetV3 (x0.95) + SVTR neck + CTC head (NRTR guidance in training).

Hyper-parameters as PaddleOCR's configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec.yml (optimiser and
schedule: tests/test_paddle_trainer.py).

Train (from the official weights, on DATA in PaddleX's layout; without dataset_dir on the
embedded demo dataset; configs/v4_mobile_finetune.py has the values for small sets):
  python -m textrec.main --config=configs/v4_mobile.py --config.dataset_dir=DATA
Predict (PATH: an image, a directory or a comma list; results in output/predict/, or
--config.predict.output_dir=DIR; `~` works in every path):
  python -m textrec.main --config=configs/v4_mobile.py --config.mode=predict \
      --config.predict.input=PATH
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def get_config():
  # PaddleOCR's recipe: Adam + L2 3e-5 (0 on the ConvBNLayer BatchNorms, 1e-5 on the CTC fc),
  # LearnableAffineBlocks at 0.1 x lr, cosine at 1e-3 after 5 warm-up epochs, BatchNorms in
  # train mode. Fine-tuning the official weights on a small set did better with a lower lr
  # and the BatchNorms' pretrained statistics kept (experiments/ic15_finetune:
  # --config.optim.lr=1e-4 --config.train.freeze_bn=True).
  c = common.base("PP-OCRv4_mobile_rec", optim=common.paddle_recipe("adam", 1e-3, 3e-5))
  c.lock()
  return c
