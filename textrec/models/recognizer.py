"""Recognizer = backbone + MultiHead (PaddleOCR's BaseModel without transform/neck), and the
registered PP-OCRv4_mobile_rec, PP-OCRv5_mobile_rec and its language variants.

Plugging in another backbone (e.g. PPHGNet_small, SVTRv2, RepSVTR):
  * write a flax module with `__call__(x [B, H, W, 3], train: bool) -> [B, 1, T, C]` (NHWC,
    with its own train/eval pooling), whose submodule names mirror Paddle's `backbone.*`;
  * build the model with
        build_recognizer(MyBackbone, dict(...backbone fields...),
                         neck=dict(dims=256, depth=2, hidden_dims=256, kernel_size=(1, 3),
                                   use_guide=True),
                         num_classes=6625,
                         nrtr=dict(out_channels=6628, nrtr_dim=384, num_decoder_layers=2))
    or directly `Recognizer(backbone=MyBackbone(...), head=MultiHead(...))`; the attribute
    names give the `backbone/...` and `head/...` variable paths;
  * register a constructor with `@register_model("name")` taking (num_classes, deploy, dtype).
`build_recognizer` passes `deploy` and `dtype` to the backbone only if its class has
those fields.

`apply(variables, x, train=False)` -> {"ctc_logits" [B, T, C]} (+ "ctc_neck", and with
`return_features=True` also "backbone_feat" [B, 1, T, C]). Training:
`apply(variables, x, train=True, nrtr_targets=t, mutable=["batch_stats"],
rngs={"dropout": key})` also gives "nrtr_logits" [B, L-1, nrtr_out + 1].
`init_variables` creates every variable, the NRTR branch included; `variable_shapes` gives
their shapes without computing (a template for textrec.weights.paddle.paddle_to_flax).

Deploy form: `get_model(name)(deploy=True)` with `reparam.deploy_variables(train_vars)`.
It computes what the eval-mode training form computes, with fewer layers, so evaluation
during training converts and runs the deploy form.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from textrec.models import heads
from textrec.models import pplcnetv3
from textrec.models.registry import V5_MOBILE_LANGUAGES, register_model


def without_guide(model: nn.Module) -> nn.Module:
  """The same recognizer with its SVTR neck's `use_guide` off (CTC gradients reach the
  backbone); same variables."""
  head = getattr(model, "head", None)
  neck = getattr(head, "neck", None)
  if not isinstance(neck, Mapping) or "use_guide" not in neck:
    raise ValueError(f"{type(model).__name__} has no SVTR neck with a use_guide setting")
  return model.clone(head=head.clone(neck=dict(neck, use_guide=False)))


class Recognizer(nn.Module):
  """x [B, H, W, 3] -> dict of outputs (see the module docstring)."""

  backbone: nn.Module
  head: nn.Module

  def __call__(self, x: jax.Array, train: bool = False, nrtr_targets: jax.Array | None = None,
               return_features: bool = False) -> dict[str, jax.Array]:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"Recognizer expects NHWC input [B, H, W, 3], got shape {x.shape}")
    feat = self.backbone(x, train=train)
    out = dict(self.head(feat, train=train, nrtr_targets=nrtr_targets))
    if return_features:
      out["backbone_feat"] = feat
    return out


def probs(outputs: Mapping[str, jax.Array]) -> jax.Array:
  """CTC probabilities [B, T, C] = softmax(ctc_logits), what Paddle's CTCHead returns in eval;
  computed in float32 at least (float64 logits stay float64)."""
  logits = outputs["ctc_logits"]
  return jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)


def _fields(cls) -> set[str]:
  return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


def build_recognizer(backbone_cls: type[nn.Module], backbone_kwargs: Mapping[str, Any] | None,
                     neck: Mapping[str, Any], num_classes: int,
                     nrtr: Mapping[str, Any] | None = None, ctc_mid_channels: int | None = None,
                     deploy: bool = False, dtype: Any = jnp.float32) -> Recognizer:
  """Backbone class + kwargs, SVTR neck fields, CTC classes, NRTR dict -> Recognizer."""
  kw = dict(backbone_kwargs or {})
  names = _fields(backbone_cls)
  if "deploy" in names:
    kw.setdefault("deploy", deploy)
  elif deploy:
    raise ValueError(f"{backbone_cls.__name__} has no deploy form")
  if "dtype" in names:
    kw.setdefault("dtype", dtype)
  head = heads.MultiHead(num_classes=num_classes, neck=dict(neck),
                         ctc_mid_channels=ctc_mid_channels,
                         nrtr=None if nrtr is None else dict(nrtr), dtype=dtype)
  return Recognizer(backbone=backbone_cls(**kw), head=head)


V4_NECK = dict(dims=120, depth=2, hidden_dims=120, kernel_size=(1, 3), use_guide=True)


@register_model("PP-OCRv4_mobile_rec")
def pp_ocrv4_mobile_rec(num_classes: int = 6625, deploy: bool = False, dtype: Any = jnp.float32,
                        nrtr_out_channels: int | None = None, with_nrtr: bool = True,
                        scale: float = 0.95) -> Recognizer:
  """PPLCNetV3 x0.95 + SVTR neck (120) + CTC; NRTR (384, 4 decoder layers) for training.

  `nrtr_out_channels` defaults to num_classes + 3 (PaddleOCR's NRTRLabelDecode count).
  """
  if isinstance(dtype, str):
    dtype = jnp.dtype(dtype)
  nrtr = None
  if with_nrtr:
    nrtr = dict(out_channels=nrtr_out_channels or num_classes + 3, nrtr_dim=384,
                num_decoder_layers=4, max_text_length=25)
  return build_recognizer(pplcnetv3.PPLCNetV3, dict(scale=scale), V4_NECK, num_classes, nrtr,
                          deploy=deploy, dtype=dtype)


@register_model("PP-OCRv5_mobile_rec")
def pp_ocrv5_mobile_rec(num_classes: int = 18385, deploy: bool = False, dtype: Any = jnp.float32,
                        nrtr_out_channels: int | None = None, with_nrtr: bool = True,
                        scale: float = 0.95) -> Recognizer:
  """PP-OCRv4_mobile_rec's network with the PP-OCRv5 dictionary's 18385 CTC classes (PaddleOCR's
  configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml differs from v4's only in the head widths);
  NRTR out 18388 by default."""
  return pp_ocrv4_mobile_rec(num_classes, deploy, dtype, nrtr_out_channels, with_nrtr, scale)


def pp_ocrv5_mobile_language_rec(num_classes: int, deploy: bool = False,
                                 dtype: Any = jnp.float32, nrtr_out_channels: int | None = None,
                                 with_nrtr: bool = True, scale: float = 0.95) -> Recognizer:
  """`<language>_PP-OCRv5_mobile_rec` (PaddleOCR's configs/rec/PP-OCRv5/multi_language/):
  PP-OCRv5_mobile_rec's network; `num_classes` (no default) is the language's dictionary
  + blank + space, as the weights or the dataset give it."""
  return pp_ocrv4_mobile_rec(num_classes, deploy, dtype, nrtr_out_channels, with_nrtr, scale)


for _lang in V5_MOBILE_LANGUAGES:
  register_model(f"{_lang}_PP-OCRv5_mobile_rec")(pp_ocrv5_mobile_language_rec)


def init_variables(model: Recognizer, rng: jax.Array, height: int = 48, width: int = 320,
                   batch: int = 1, with_nrtr: bool = True, text_len: int = 27) -> dict:
  """Creates all variables ({"params", "batch_stats"}), the NRTR branch too if it exists."""
  x = jnp.zeros((batch, height, width, 3), jnp.float32)
  nrtr = with_nrtr and getattr(model.head, "nrtr", None) is not None
  t = jnp.zeros((batch, text_len), jnp.int32) if nrtr else None

  @jax.jit
  def init(rng):
    p_rng, d_rng = jax.random.split(rng)
    v = model.init({"params": p_rng, "dropout": d_rng}, x, train=nrtr, nrtr_targets=t)
    return {k: v[k] for k in ("params", "batch_stats") if k in v}

  return init(rng)


def variable_shapes(model: Recognizer, **kwargs) -> dict:
  """`init_variables` shapes only (jax.ShapeDtypeStruct leaves), without computing anything."""
  return jax.eval_shape(lambda r: init_variables(model, r, **kwargs), jax.random.key(0))
