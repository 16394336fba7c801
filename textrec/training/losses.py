"""Training losses, as PaddleOCR's CTCLoss, NRTRLoss and MultiLoss.

* CTC: per-sample negative log-likelihood (summed over time, not normalised by length), mean
  over the batch (Paddle `nn.CTCLoss(blank=0, reduction="none")` then `.mean()`).
* NRTR: cross-entropy with label smoothing 0.1 (true class 1 - eps, every other class
  eps / (C - 1)) over the non-padding target tokens (id 0 = padding), mean over those tokens.
* MultiLoss: ctc_weight * ctc + nrtr_weight * nrtr.
All reductions are over the whole (global) batch, so a data-parallel run computes the same
value as one device.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def ctc_loss_per_sample(logits: jax.Array, labels: jax.Array,
                        label_paddings: jax.Array) -> jax.Array:
  """logits f32[B, T, C] (pre-softmax), labels i32[B, L], label_paddings f32[B, L] (1 = pad)
  -> f32[B]: each sample's negative log-likelihood over all T steps (blank id 0), not
  normalised by its length."""
  logits = logits.astype(jnp.float32)
  logit_paddings = jnp.zeros(logits.shape[:2], jnp.float32)
  return optax.ctc_loss(logits, logit_paddings, labels, label_paddings.astype(jnp.float32),
                        blank_id=0)


def ctc_loss(logits: jax.Array, labels: jax.Array, label_paddings: jax.Array) -> jax.Array:
  """The scalar batch mean of `ctc_loss_per_sample`."""
  return ctc_loss_per_sample(logits, labels, label_paddings).mean()


def smoothed_cross_entropy(logits: jax.Array, targets: jax.Array,
                           smoothing: float = 0.1) -> jax.Array:
  """logits f32[B, L, C], targets i32[B, L] (0 = padding) -> scalar mean over non-pad tokens."""
  logits = logits.astype(jnp.float32)
  n_class = logits.shape[-1]
  logp = jax.nn.log_softmax(logits, axis=-1)
  one_hot = jax.nn.one_hot(targets, n_class, dtype=jnp.float32)
  soft = one_hot * (1.0 - smoothing) + (1.0 - one_hot) * (smoothing / (n_class - 1))
  per_tok = -(soft * logp).sum(-1)
  mask = (targets != 0).astype(jnp.float32)
  return (per_tok * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def nrtr_loss(logits: jax.Array, label_nrtr: jax.Array, smoothing: float = 0.1) -> jax.Array:
  """NRTR guidance loss.

  logits f32[B, L', C_nrtr] predict the tokens after <s>; label_nrtr i32[B, >= L' + 1] is
  `<s> chars </s> 0 ...` (PaddleOCR's NRTRLabelEncode), so the targets are label_nrtr[:, 1:L'+1].
  """
  n = logits.shape[1]
  if label_nrtr.shape[1] < n + 1:
    raise ValueError(f"label_nrtr has {label_nrtr.shape[1]} tokens; the NRTR logits need {n + 1}")
  return smoothed_cross_entropy(logits, label_nrtr[:, 1:n + 1], smoothing)


def multi_loss(outputs: dict, batch: dict, ctc_weight: float = 1.0,
               nrtr_weight: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """PaddleOCR MultiLoss over the model outputs and a batch.

  outputs: "ctc_logits" [B, T, C] and optionally "nrtr_logits" [B, L', C_nrtr].
  batch: "label_ctc" i32[B, L], "label_ctc_pad" f32[B, L], "label_nrtr" i32[B, L + 2].
  Returns (total, {"loss", "ctc", "nrtr"}).
  """
  parts = {"ctc": ctc_loss(outputs["ctc_logits"], batch["label_ctc"], batch["label_ctc_pad"])}
  total = ctc_weight * parts["ctc"]
  if outputs.get("nrtr_logits") is not None and nrtr_weight:
    parts["nrtr"] = nrtr_loss(outputs["nrtr_logits"], batch["label_nrtr"])
    total = total + nrtr_weight * parts["nrtr"]
  parts["loss"] = total
  return total, parts
