"""Inference-form parameter counts of the four recognizers, next to the official sizes.

  python scripts/param_counts.py

Counts the variables of each registered model as exported (no NRTR branch; BatchNorm
statistics included, as in Paddle's state_dict / `inference.pdiparams`), float32 bytes in MB
(1e6) and MiB. Beside them: the size PaddleOCR's own code gives (the paddle_ref fixtures'
README) and the inference-model size PaddleX quotes. Only shapes are built; nothing runs.
"""
from __future__ import annotations

import jax

from textrec.models import registry
from textrec.models import recognizer
from textrec.weights.paddle import param_count

# model, deploy form, PaddleOCR code MB (fixtures README), PaddleX quoted MB
ROWS = (
    ("PP-OCRv4_mobile_rec", False, None, None),
    ("PP-OCRv4_mobile_rec", True, 10.76, 10.6),
    ("PP-OCRv4_server_rec", True, 90.45, 71.2),
    ("ch_SVTRv2_rec", True, 83.94, 73.9),
    ("ch_RepSVTR_rec", False, 25.26, 22.1),   # what PaddleOCR exports (never fused)
    ("ch_RepSVTR_rec", True, None, None),     # ours, fused THU-MIG style
)


def count(name: str, deploy: bool, num_classes: int = 6625) -> int:
  model = registry.get_model(name)(num_classes=num_classes, deploy=deploy, with_nrtr=False)
  shapes = jax.eval_shape(lambda r: recognizer.init_variables(model, r, with_nrtr=False),
                          jax.random.key(0))
  return param_count(shapes)


def main() -> None:
  head = (f"{'model':<22}{'form':<9}{'params':>12}{'MB':>9}{'MiB':>9}"
          f"{'PaddleOCR code':>16}{'PaddleX quoted':>16}")
  print(head)
  print("-" * len(head))
  for name, deploy, code_mb, quoted_mb in ROWS:
    n = count(name, deploy)
    mb, mib = n * 4 / 1e6, n * 4 / 2 ** 20
    fmt = lambda v: f"{v:.2f} MB" if v is not None else "-"
    print(f"{name:<22}{'deploy' if deploy else 'train':<9}{n:>12,}{mb:>9.2f}{mib:>9.2f}"
          f"{fmt(code_mb):>16}{fmt(quoted_mb):>16}")
  print("\nPaddleOCR re-parameterises only PPLCNetV3 at export; PPHGNet_small and SVTRv2 have "
        "nothing to fuse,\nand its RepSVTR inference model is the unfused form (the fused row "
        "is textrec's deploy form).")


if __name__ == "__main__":
  main()
