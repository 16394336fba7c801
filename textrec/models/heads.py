"""Recognition heads, as PaddleOCR's `heads/rec_ctc_head.py`, `rec_nrtr_head.py` and
`rec_multi_head.py`.

* CTCHead: [B, T, C] -> logits [B, T, num_classes] (`fc`, or `fc1`/`fc2` with mid_channels).
  Paddle applies softmax only at inference; we always return logits.
* Transformer (NRTR, the GTC guidance head): decoder-only by default (num_encoder_layers <= 0),
  `embedding/embedding`, `decoder_i/{self_attn/{qkv,out_proj},norm1,cross_attn/{q,kv,out_proj},
  norm2,mlp/{fc1,fc2},norm3}`, `tgt_word_prj`. The sinusoidal positional table (Paddle's
  buffer `positional_encoding.pe`) is a constant here, not a variable;
  `nrtr_positional_table(pe)` replaces it at trace time (weights whose buffer is not the
  sinusoid, e.g. the synthetic test fixtures).
* MultiHead: `ctc_encoder` (SVTR neck) + `ctc_head`; in training with targets also
  `before_gtc_1/fc` (+ `before_gtc_2/dec_pos_embed` if use_pos) and `gtc_head`.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from textrec.models import layers
from textrec.models import light_svtr
from textrec.models import svtr_neck
from textrec.runtime import settings

_PE_TABLE: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar(
    "textrec_nrtr_pe", default=None)


def nrtr_positional_table(pe: np.ndarray) -> contextlib.AbstractContextManager:
  """Within this context (at trace time) the NRTR adds rows of `pe` [max_len, d_model] (Paddle's
  `positional_encoding.pe` buffer, [max_len, 1, d_model] accepted too) instead of the sinusoid."""
  pe = np.asarray(pe, np.float32)
  return settings.scoped(_PE_TABLE, pe.reshape(pe.shape[0], pe.shape[-1]))


def _uniform(limit: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -limit, limit)
  return init


class CTCHead(nn.Module):
  """x [B, T, C] -> logits [B, T, num_classes].

  `use_guide` (PP-OCRv6 tiny): a guide layer on x before `fc1`: depthwise conv1d (kernel 5,
  pad 2, no bias) `guide_layer_0` -> BatchNorm1D `guide_layer_1` -> Hardswish -> pointwise
  conv1d (no bias) `guide_layer_3` -> BatchNorm1D `guide_layer_4` -> Hardswish. Its conv
  weights are kept in Paddle's layout [out, in/groups, k] (param `weight`). With
  `return_guide`, returns (logits, guide output [B, T, C] or None).
  """

  num_classes: int
  mid_channels: int | None = None
  use_guide: bool = False
  guide_kernel: int = 5
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_guide: bool = False):
    guide = None
    if self.use_guide:
      c, g = x.shape[-1], self.guide_kernel
      dt = self.dtype or x.dtype
      w0 = _Conv1DWeight((c, 1, g), name="guide_layer_0")().astype(dt)
      y = jax.lax.conv_general_dilated(  # depthwise, as one Conv in an ONNX export
          x.astype(dt), jnp.transpose(w0, (2, 1, 0)), (1,), [(g // 2, g // 2)],
          dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=c)
      y = layers.hardswish(layers.batch_norm("guide_layer_1", train, self.dtype)(y))
      w3 = _Conv1DWeight((c, c, 1), name="guide_layer_3")().astype(dt)
      y = jnp.einsum("btc,oc->bto", y, w3[:, :, 0])
      x = guide = layers.hardswish(layers.batch_norm("guide_layer_4", train, self.dtype)(y))
    k = x.shape[-1]
    if self.mid_channels is None:
      lim = 1.0 / math.sqrt(k)
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=_uniform(lim),
                        bias_init=_uniform(lim), name="fc")(x)
    else:
      lim1, lim2 = 1.0 / math.sqrt(k), 1.0 / math.sqrt(self.mid_channels)
      x = nn.Dense(self.mid_channels, dtype=self.dtype, kernel_init=_uniform(lim1),
                   bias_init=_uniform(lim1), name="fc1")(x)
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=_uniform(lim2),
                        bias_init=_uniform(lim2), name="fc2")(x)
    return (logits, guide) if return_guide else logits


class _Conv1DWeight(nn.Module):
  """A bias-free conv1d weight in Paddle's layout [out, in/groups, k] (param `weight`)."""

  shape: tuple[int, int, int]

  @nn.compact
  def __call__(self) -> jax.Array:
    return self.param("weight", nn.initializers.he_normal(in_axis=(1, 2), out_axis=0),
                      self.shape)


def sinusoid_table(length: int, dim: int) -> np.ndarray:
  """NRTR PositionalEncoding table [length, dim] (float32, computed as Paddle does)."""
  position = np.arange(length, dtype=np.float32)[:, None]
  div_term = np.exp(np.arange(0, dim, 2).astype(np.float32) *
                    np.float32(-math.log(10000.0) / dim)).astype(np.float32)
  pe = np.zeros((length, dim), np.float32)
  pe[:, 0::2] = np.sin(position * div_term)
  pe[:, 1::2] = np.cos(position * div_term)
  return pe


class MultiheadAttention(nn.Module):
  """NRTR attention on [B, N, C]: self (`qkv`) or cross (`q`, `kv`), then `out_proj`.

  Scores are (q @ k^T) * head_dim**-0.5 + mask (additive).
  """

  num_heads: int
  self_attn: bool = False
  dropout: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, query: jax.Array, key: jax.Array | None = None,
               mask: jax.Array | None = None, train: bool = False) -> jax.Array:
    b, qn, c = query.shape
    hd = c // self.num_heads
    if hd * self.num_heads != c:
      raise ValueError(f"embed dim {c} not divisible by num_heads={self.num_heads}")
    init = nn.initializers.xavier_normal()
    if self.self_attn:
      qkv = nn.Dense(3 * c, dtype=self.dtype, kernel_init=init, name="qkv")(query)
      qkv = qkv.reshape(b, qn, 3, self.num_heads, hd)
      q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    else:
      kn = key.shape[1]
      q = nn.Dense(c, dtype=self.dtype, kernel_init=init, name="q")(query)
      q = q.reshape(b, qn, self.num_heads, hd)
      kv = nn.Dense(2 * c, dtype=self.dtype, kernel_init=init, name="kv")(key)
      kv = kv.reshape(b, kn, 2, self.num_heads, hd)
      k, v = kv[:, :, 0], kv[:, :, 1]
    attn = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (hd ** -0.5)
    if mask is not None:
      attn = attn + mask
    attn = jax.nn.softmax(attn, axis=-1)
    attn = nn.Dropout(self.dropout, deterministic=not train)(attn)
    x = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, qn, c)
    return nn.Dense(c, dtype=self.dtype, kernel_init=init, name="out_proj")(x)


class TransformerBlock(nn.Module):
  """Post-norm block: self-attn (`norm1`), cross-attn (`norm2`), ReLU MLP (`norm3`)."""

  nhead: int
  dim_feedforward: int = 2048
  attention_dropout_rate: float = 0.0
  residual_dropout_rate: float = 0.1
  with_self_attn: bool = True
  with_cross_attn: bool = False
  epsilon: float = 1e-5
  dtype: Any = None

  @nn.compact
  def __call__(self, tgt: jax.Array, memory: jax.Array | None = None,
               self_mask: jax.Array | None = None, train: bool = False) -> jax.Array:
    drop = lambda y: nn.Dropout(self.residual_dropout_rate, deterministic=not train)(y)
    if self.with_self_attn:
      t = MultiheadAttention(self.nhead, True, self.attention_dropout_rate, self.dtype,
                             name="self_attn")(tgt, mask=self_mask, train=train)
      tgt = layers.layer_norm(self.epsilon, "norm1", self.dtype)(tgt + drop(t))
    if self.with_cross_attn:
      t = MultiheadAttention(self.nhead, False, self.attention_dropout_rate, self.dtype,
                             name="cross_attn")(tgt, key=memory, train=train)
      tgt = layers.layer_norm(self.epsilon, "norm2", self.dtype)(tgt + drop(t))
    t = svtr_neck.Mlp(self.dim_feedforward, act="relu", drop=self.residual_dropout_rate,
                      dtype=self.dtype, name="mlp")(tgt, train)
    return layers.layer_norm(self.epsilon, "norm3", self.dtype)(tgt + drop(t))


class Transformer(nn.Module):
  """NRTR (teacher-forced training pass only).

  `__call__(src [B, N, d_model], tgt i32[B, L])` -> logits [B, L-1, out_channels + 1]: the
  decoder reads tgt[:, :-1] (tgt = <s> ... </s> pad, ids as textrec.charset's NRTR ids) under a
  causal mask, and position i predicts tgt[:, i + 1].
  """

  out_channels: int  # NRTRLabelDecode classes (6628); the vocabulary is out_channels + 1
  d_model: int = 512
  nhead: int = 8
  num_encoder_layers: int = -1
  num_decoder_layers: int = 6
  dim_feedforward: int = 1024
  attention_dropout_rate: float = 0.0
  residual_dropout_rate: float = 0.1
  max_len: int = 25
  scale_embedding: bool = True
  dtype: Any = None

  def _block(self, name: str, cross: bool) -> TransformerBlock:
    return TransformerBlock(self.nhead, self.dim_feedforward, self.attention_dropout_rate,
                            self.residual_dropout_rate, True, cross, dtype=self.dtype, name=name)

  def _add_pe(self, x: jax.Array, train: bool) -> jax.Array:
    table = _PE_TABLE.get()
    if table is None:
      table = sinusoid_table(x.shape[1], self.d_model)
    pe = jnp.asarray(table[:x.shape[1]], x.dtype)
    return nn.Dropout(self.residual_dropout_rate, deterministic=not train)(x + pe[None])

  @nn.compact
  def __call__(self, src: jax.Array, tgt: jax.Array, train: bool = False) -> jax.Array:
    vocab = self.out_channels + 1
    tgt = tgt[:, :-1]
    # Paddle's Embeddings wraps nn.Embedding: `embedding/embedding`; padding_idx 0 -> zeros.
    emb = _Embeddings(vocab, self.d_model, self.scale_embedding, self.dtype, name="embedding")
    t = self._add_pe(emb(tgt), train)
    n = t.shape[1]
    causal = jnp.where(jnp.triu(jnp.ones((n, n), bool), 1), -jnp.inf, 0.0).astype(t.dtype)
    memory = src
    if self.num_encoder_layers > 0:
      memory = self._add_pe(src, train)
      for i in range(self.num_encoder_layers):
        memory = self._block(f"encoder_{i}", False)(memory, train=train)
    for i in range(self.num_decoder_layers):
      t = self._block(f"decoder_{i}", True)(t, memory, causal[None, None], train)
    return nn.Dense(vocab, use_bias=False, dtype=self.dtype,
                    kernel_init=nn.initializers.normal(self.d_model ** -0.5),
                    name="tgt_word_prj")(t)


class _Embeddings(nn.Module):
  vocab: int
  d_model: int
  scale_embedding: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, ids: jax.Array) -> jax.Array:
    x = nn.Embed(self.vocab, self.d_model, dtype=self.dtype,
                 embedding_init=nn.initializers.normal(self.d_model ** -0.5),
                 name="embedding")(ids)
    x = jnp.where((ids == 0)[..., None], 0.0, x).astype(x.dtype)
    return x * math.sqrt(self.d_model) if self.scale_embedding else x


class FCTranspose(nn.Module):
  """[B, N, C] -> `fc` (no bias) -> [B, N, out] (Paddle's Flatten + FCTranspose)."""

  features: int
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Dense(self.features, use_bias=False, dtype=self.dtype, name="fc")(x)


class AddPos(nn.Module):
  """Adds a learned `dec_pos_embed` [1, w, C] to x [B, N, C] (N <= w)."""

  w: int = 80

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pos = self.param("dec_pos_embed", nn.initializers.truncated_normal(0.02),
                     (1, self.w, x.shape[-1]))
    return x + pos[:, :x.shape[1]].astype(x.dtype)


class MultiHead(nn.Module):
  """Backbone features [B, 1, T, C] -> {"ctc_logits" [B, T, num_classes], "ctc_neck" [B, T, D]}
  plus "nrtr_logits" [B, L-1, nrtr_out + 1] when training with `nrtr_targets` i32[B, L].

  neck: the fields of the `neck_kind` encoder: "svtr" EncoderWithSVTR's (dims, depth,
  hidden_dims, kernel_size, use_guide, ...), "lightsvtr" EncoderWithLightSVTR's
  (textrec.models.light_svtr), "reshape" none (Im2Seq only, PP-OCRv6 tiny). `ctc_guide`: the
  CTC head's guide layer (then also "ctc_guide_feat" [B, T, C]).
  nrtr: None (no GTC branch) or dict(out_channels=6628, nrtr_dim=384, num_decoder_layers=4,
  max_text_length=25, use_pos=False). Paddle's `use_pool` option is not supported (no
  PaddleOCR recognizer config we target sets it on the head).
  """

  num_classes: int
  neck: Any = None
  ctc_mid_channels: int | None = None
  nrtr: Any = None
  neck_kind: str = "svtr"
  ctc_guide: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, nrtr_targets: jax.Array | None = None
               ) -> dict[str, jax.Array]:
    if self.neck_kind == "svtr":
      seq = svtr_neck.SequenceEncoder(self.neck, self.dtype, name="ctc_encoder")(x, train)
    elif self.neck_kind == "lightsvtr":
      seq = light_svtr.LightSVTRSequenceEncoder(self.neck, self.dtype, name="ctc_encoder")(
          x, train)
    elif self.neck_kind == "reshape":
      seq = svtr_neck.im2seq(x)
    else:
      raise ValueError(f"MultiHead: unknown neck_kind {self.neck_kind!r} "
                       "(svtr | lightsvtr | reshape)")
    logits, guide = CTCHead(self.num_classes, self.ctc_mid_channels, self.ctc_guide,
                            dtype=self.dtype, name="ctc_head")(seq, train, return_guide=True)
    out = {"ctc_logits": logits, "ctc_neck": seq}
    if guide is not None:
      out["ctc_guide_feat"] = guide
    if train and nrtr_targets is not None:
      if self.nrtr is None:
        raise ValueError("nrtr_targets given but this head has no NRTR branch (nrtr=None)")
      cfg = dict(self.nrtr)
      dim = cfg.get("nrtr_dim", 256)
      b, h, w, c = x.shape
      src = FCTranspose(dim, self.dtype, name="before_gtc_1")(x.reshape(b, h * w, c))
      if cfg.get("use_pos", False):
        src = AddPos(80, name="before_gtc_2")(src)
      out["nrtr_logits"] = Transformer(
          out_channels=cfg["out_channels"], d_model=dim, nhead=dim // 32,
          num_encoder_layers=-1, num_decoder_layers=cfg.get("num_decoder_layers", 4),
          dim_feedforward=dim * 4, max_len=cfg.get("max_text_length", 25), dtype=self.dtype,
          name="gtc_head")(src, nrtr_targets, train)
    return out
