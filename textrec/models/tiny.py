"""A tiny recogniser for tests and quick experiments (configs/tiny.py): the PP-OCRv4 mobile
architecture (PPLCNetV3 + SVTR neck + CTC, NRTR guidance in training) at a fraction of the
width and depth. Same module names as the real model, so every code path is exercised.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from textrec.models import pplcnetv3
from textrec.models.recognizer import Recognizer, build_recognizer
from textrec.models.registry import register_model

# (kernel, in_c, out_c, stride, use_se) before scaling, one or two blocks per stage.
TINY_NET = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 1, False),),
    "blocks4": ((3, 64, 128, (2, 1), False),),
    "blocks5": ((3, 128, 256, (1, 2), False),),
    "blocks6": ((3, 256, 512, (2, 1), True), (3, 512, 512, (2, 1), False)),
}


@register_model("tiny_rec")
def tiny_rec(num_classes: int = 40, deploy: bool = False, dtype: Any = jnp.float32,
             width: int = 128, max_text_length: int = 10, with_nrtr: bool = True,
             **unused) -> Recognizer:
  """Input [B, 48, width, 3] -> T = width / 8 frames in training and at inference."""
  del unused
  if isinstance(dtype, str):
    dtype = jnp.dtype(dtype)
  nrtr = None
  if with_nrtr:
    nrtr = dict(out_channels=num_classes + 3, nrtr_dim=32, num_decoder_layers=1,
                max_text_length=max_text_length)
  neck = dict(dims=32, depth=1, hidden_dims=32, kernel_size=(1, 3), use_guide=True)
  backbone = dict(scale=0.125, conv_kxk_num=1, net_config=TINY_NET,
                  train_pool_hw=(1, width // 8))
  return build_recognizer(pplcnetv3.PPLCNetV3, backbone, neck, num_classes, nrtr,
                          deploy=deploy, dtype=dtype)
