"""PP-OCRv4_server_rec, PP-OCRv5_server_rec, ch_SVTRv2_rec and ch_RepSVTR_rec (PaddleOCR's
configs `PP-OCRv4/PP-OCRv4_server_rec.yml`, `PP-OCRv5/PP-OCRv5_server_rec.yml`,
`SVTRv2/ch_SVTRv2_rec.yml`, `SVTRv2/ch_RepSVTR_rec.yml`).

Each constructor takes (num_classes, deploy, dtype, nrtr_out_channels, with_nrtr) like
PP-OCRv4_mobile_rec's. `nrtr_out_channels` defaults to num_classes + 3 (PaddleOCR's
NRTRLabelDecode count, 6628 for the Chinese dictionary).
Deploy form: PPHGNet_small, PPHGNetV2_B4 and SVTRv2 have nothing to re-parameterise (deploy = training
form); RepSVTR's fused form is `deploy=True`, with variables from `repsvtr.fuse_variables`.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from textrec.models import pphgnet, pphgnetv2, pplcnetv4, reparam, repsvtr, svtrv2
from textrec.models.recognizer import Recognizer, build_recognizer
from textrec.models.registry import register_model

SERVER_NECK = dict(dims=120, depth=2, hidden_dims=120, kernel_size=(1, 3), use_guide=True)
SVTRV2_NECK = dict(dims=256, depth=2, hidden_dims=256, kernel_size=(1, 3), use_guide=True)


def _nrtr(with_nrtr: bool, num_classes: int, out: int | None, layers: int) -> dict | None:
  if not with_nrtr:
    return None
  return dict(out_channels=out or num_classes + 3, nrtr_dim=384, num_decoder_layers=layers,
              max_text_length=25)


def _dtype(dtype: Any) -> Any:
  return jnp.dtype(dtype) if isinstance(dtype, str) else dtype


@register_model("PP-OCRv4_server_rec")
def pp_ocrv4_server_rec(num_classes: int = 6625, deploy: bool = False, dtype: Any = jnp.float32,
                        nrtr_out_channels: int | None = None, with_nrtr: bool = True
                        ) -> Recognizer:
  """PPHGNet_small + SVTR neck (120) + CTC; NRTR (384, 4 decoder layers) in training."""
  del deploy  # nothing to fuse
  return build_recognizer(pphgnet.PPHGNet, None, SERVER_NECK, num_classes,
                          _nrtr(with_nrtr, num_classes, nrtr_out_channels, 4),
                          dtype=_dtype(dtype))


@register_model("PP-OCRv5_server_rec")
def pp_ocrv5_server_rec(num_classes: int = 18385, deploy: bool = False, dtype: Any = jnp.float32,
                        nrtr_out_channels: int | None = None, with_nrtr: bool = True
                        ) -> Recognizer:
  """PPHGNetV2_B4 (text_rec) + SVTR neck (120, from 2048 channels) + CTC; NRTR (384, 4 decoder
  layers) in training."""
  del deploy  # nothing to fuse
  return build_recognizer(pphgnetv2.PPHGNetV2, None, SERVER_NECK, num_classes,
                          _nrtr(with_nrtr, num_classes, nrtr_out_channels, 4),
                          dtype=_dtype(dtype))


@register_model("ch_SVTRv2_rec")
def ch_svtrv2_rec(num_classes: int = 6625, deploy: bool = False, dtype: Any = jnp.float32,
                  nrtr_out_channels: int | None = None, with_nrtr: bool = True,
                  drop_path_rate: float = 0.1) -> Recognizer:
  """SVTRv2 (dims 128/256/384, depths 6/6/6) + SVTR neck (256) + CTC; NRTR (2 layers)."""
  del deploy  # nothing to fuse
  return build_recognizer(svtrv2.SVTRv2, dict(drop_path_rate=drop_path_rate), SVTRV2_NECK,
                          num_classes, _nrtr(with_nrtr, num_classes, nrtr_out_channels, 2),
                          dtype=_dtype(dtype))


@register_model("ch_RepSVTR_rec")
def ch_repsvtr_rec(num_classes: int = 6625, deploy: bool = False, dtype: Any = jnp.float32,
                   nrtr_out_channels: int | None = None, with_nrtr: bool = True) -> Recognizer:
  """RepSVTR (training or fused deploy form) + SVTR neck (256) + CTC; NRTR (2 layers)."""
  return build_recognizer(repsvtr.RepSVTR, None, SVTRV2_NECK, num_classes,
                          _nrtr(with_nrtr, num_classes, nrtr_out_channels, 2), deploy=deploy,
                          dtype=_dtype(dtype))


def to_deploy(name: str, variables: dict) -> dict:
  """Training-form variables of any registered recognizer -> its deploy form's.

  Fuses PPLCNetV3's LearnableRepLayers (reparam.deploy_variables), RepSVTR's conv-BN /
  RepVGG blocks and PPLCNetV4's ConvBNs / RepDWConvs (pplcnetv4.deploy_variables); the identity where nothing re-parameterises. Idempotent: already-fused
  variables come back unchanged, so callers may apply it whenever they need the deploy form.
  """
  variables = reparam.deploy_variables(variables)
  if name == "ch_RepSVTR_rec":
    variables = repsvtr.fuse_variables(variables, ("backbone",))
  if name.startswith("PP-OCRv6_"):
    variables = pplcnetv4.deploy_variables(variables)
  return variables
