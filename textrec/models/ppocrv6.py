"""PP-OCRv6_small_rec, PP-OCRv6_tiny_rec and PP-OCRv6_medium_rec (PaddleOCR's configs
`PP-OCRv6/PP-OCRv6_{small,tiny,medium}_rec.yml`, PaddleX's names).

PPLCNetV4 (small / tiny / medium) + CTC neck + CTC head; NRTR (4 decoder layers) in training:
  * small: LightSVTR neck (dims 120, depth 2, mlp ratio 2), 18710 classes, NRTR dim 384;
  * medium: LightSVTR neck (dims 192, depth 2, mlp ratio 4), 18710 classes, NRTR dim 512;
  * tiny: Im2Seq only (160 channels), CTC head with the guide layer and fc1 160 -> 80 -> fc2
    (no activation between), 6906 classes, NRTR dim 384.
Each constructor takes (num_classes, deploy, dtype, nrtr_out_channels, with_nrtr) like the
other recognizers; `nrtr_out_channels` defaults to num_classes + 3. Deploy form: `deploy=True`
with `pplcnetv4.deploy_variables(train_vars)` (also `zoo.to_deploy`).
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from textrec.models import heads, pplcnetv4
from textrec.models.recognizer import Recognizer
from textrec.models.registry import register_model

NAMES = ("PP-OCRv6_small_rec", "PP-OCRv6_tiny_rec", "PP-OCRv6_medium_rec")
# size -> (neck kind, neck fields, CTC mid channels, guide layer, default classes, NRTR dim)
SIZES = {
    "small": ("lightsvtr", dict(dims=120, depth=2, mlp_ratio=2.0, local_kernel=7), None, False,
              18710, 384),
    "medium": ("lightsvtr", dict(dims=192, depth=2, mlp_ratio=4.0, local_kernel=7), None, False,
               18710, 512),
    "tiny": ("reshape", {}, 80, True, 6906, 384),
}


def build_v6(size: str, num_classes: int | None = None, deploy: bool = False,
             dtype: Any = jnp.float32, nrtr_out_channels: int | None = None,
             with_nrtr: bool = True) -> Recognizer:
  """The PP-OCRv6 recognizer of `size` (small | tiny | medium)."""
  kind, neck, mid, guide, classes, nrtr_dim = SIZES[size]
  num_classes = num_classes or classes
  dtype = jnp.dtype(dtype) if isinstance(dtype, str) else dtype
  nrtr = None
  if with_nrtr:
    nrtr = dict(out_channels=nrtr_out_channels or num_classes + 3, nrtr_dim=nrtr_dim,
                num_decoder_layers=4, max_text_length=25)
  head = heads.MultiHead(num_classes=num_classes, neck=dict(neck), ctc_mid_channels=mid,
                         nrtr=nrtr, neck_kind=kind, ctc_guide=guide, dtype=dtype)
  return Recognizer(backbone=pplcnetv4.PPLCNetV4(size, deploy=deploy, dtype=dtype), head=head)


@register_model("PP-OCRv6_small_rec")
def pp_ocrv6_small_rec(num_classes: int = 18710, deploy: bool = False, dtype: Any = jnp.float32,
                       nrtr_out_channels: int | None = None, with_nrtr: bool = True
                       ) -> Recognizer:
  """PPLCNetV4 small + LightSVTR (120) + CTC; NRTR (384) in training."""
  return build_v6("small", num_classes, deploy, dtype, nrtr_out_channels, with_nrtr)


@register_model("PP-OCRv6_tiny_rec")
def pp_ocrv6_tiny_rec(num_classes: int = 6906, deploy: bool = False, dtype: Any = jnp.float32,
                      nrtr_out_channels: int | None = None, with_nrtr: bool = True
                      ) -> Recognizer:
  """PPLCNetV4 tiny + Im2Seq + guided CTC (160 -> 80 -> classes); NRTR (384) in training."""
  return build_v6("tiny", num_classes, deploy, dtype, nrtr_out_channels, with_nrtr)


@register_model("PP-OCRv6_medium_rec")
def pp_ocrv6_medium_rec(num_classes: int = 18710, deploy: bool = False, dtype: Any = jnp.float32,
                        nrtr_out_channels: int | None = None, with_nrtr: bool = True
                        ) -> Recognizer:
  """PPLCNetV4 medium + LightSVTR (192, mlp 4) + CTC; NRTR (512) in training."""
  return build_v6("medium", num_classes, deploy, dtype, nrtr_out_channels, with_nrtr)
