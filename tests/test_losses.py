"""Losses as PaddleOCR's CTCLoss / NRTRLoss / MultiLoss, checked against direct definitions."""
from __future__ import annotations

import itertools
import os
import sys

import jax
import numpy as np
import optax
import pytest

from textrec.training import losses

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402


def _collapse(path):
  out, prev = [], None
  for p in path:
    if p != prev and p != 0:
      out.append(p)
    prev = p
  return tuple(out)


def _ctc_brute_force(logits: np.ndarray, label: tuple[int, ...]) -> float:
  """-log sum over every frame path that collapses to `label` (blank 0)."""
  logp = np.asarray(jax.nn.log_softmax(logits.astype(np.float64), axis=-1))
  T, C = logp.shape
  total = 0.0
  for path in itertools.product(range(C), repeat=T):
    if _collapse(path) == label:
      total += np.exp(sum(logp[t, c] for t, c in enumerate(path)))
  return -np.log(total)


def test_ctc_matches_path_enumeration_and_means_over_batch():
  rng = np.random.default_rng(0)
  B, T, C, L = 3, 5, 4, 3
  logits = rng.normal(size=(B, T, C)).astype(np.float32)
  labels = [(1, 2), (3, 3, 1), (2,)]  # a repeat needs a blank between: still feasible in T=5
  ids = np.zeros((B, L), np.int32)
  pad = np.ones((B, L), np.float32)
  for b, lab in enumerate(labels):
    ids[b, :len(lab)] = lab
    pad[b, :len(lab)] = 0
  want = np.mean([_ctc_brute_force(logits[b], labels[b]) for b in range(B)])
  got = float(losses.ctc_loss(logits, ids, pad))
  assert got == pytest.approx(want, rel=1e-5)
  # Not normalised by label length (Paddle's norm_by_times=False): the per-sample sum.
  one = float(losses.ctc_loss(logits[1:2], ids[1:2], pad[1:2]))
  assert one == pytest.approx(_ctc_brute_force(logits[1], labels[1]), rel=1e-5)


def test_nrtr_smoothed_cross_entropy_definition_and_padding_mask():
  rng = np.random.default_rng(1)
  B, Lp, C, eps = 2, 4, 6, 0.1
  logits = rng.normal(size=(B, Lp, C)).astype(np.float32)
  label_nrtr = np.array([[2, 4, 5, 3, 0], [2, 5, 3, 0, 0]], np.int32)  # <s> ... </s> pad
  targets = label_nrtr[:, 1:]
  logp = np.asarray(jax.nn.log_softmax(logits.astype(np.float64), -1))
  per, n = 0.0, 0
  for b in range(B):
    for t in range(Lp):
      y = targets[b, t]
      if y == 0:
        continue
      soft = np.full(C, eps / (C - 1))
      soft[y] = 1 - eps
      per += -(soft * logp[b, t]).sum()
      n += 1
  got = float(losses.nrtr_loss(logits, label_nrtr))
  assert got == pytest.approx(per / n, rel=1e-5)
  # Logits at padded target positions do not matter.
  changed = logits.copy()
  changed[1, 2:] += 100.0
  assert float(losses.nrtr_loss(changed, label_nrtr)) == pytest.approx(got, rel=1e-6)
  # smoothing 0 is plain cross-entropy over the non-pad tokens.
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  mask = targets != 0
  plain = float((np.asarray(ce) * mask).sum() / mask.sum())
  assert float(losses.smoothed_cross_entropy(logits, targets, 0.0)) == pytest.approx(plain,
                                                                                     rel=1e-5)


def test_nrtr_rejects_short_labels():
  with pytest.raises(ValueError, match="label_nrtr has 3 tokens"):
    losses.nrtr_loss(np.zeros((1, 4, 5), np.float32), np.zeros((1, 3), np.int32))


def test_multi_loss_weights_and_optional_nrtr():
  rng = np.random.default_rng(2)
  out = dict(ctc_logits=rng.normal(size=(2, 6, 5)).astype(np.float32),
             nrtr_logits=rng.normal(size=(2, 4, 9)).astype(np.float32))
  batch = dict(label_ctc=np.array([[1, 2, 0], [3, 0, 0]], np.int32),
               label_ctc_pad=np.array([[0, 0, 1], [0, 1, 1]], np.float32),
               label_nrtr=np.array([[2, 4, 5, 3, 0], [2, 6, 3, 0, 0]], np.int32))
  total, parts = losses.multi_loss(out, batch, ctc_weight=0.5, nrtr_weight=2.0)
  assert float(total) == pytest.approx(0.5 * float(parts["ctc"]) + 2.0 * float(parts["nrtr"]),
                                       rel=1e-6)
  total2, parts2 = losses.multi_loss({"ctc_logits": out["ctc_logits"]}, batch)
  assert "nrtr" not in parts2 and float(total2) == pytest.approx(float(parts["ctc"]), rel=1e-6)


def test_use_guide_stops_ctc_gradient_and_without_guide_lets_it_through():
  """PaddleOCR's use_guide: the CTC loss does not reach the backbone; `without_guide` (the
  train.use_guide=False setting) lets it through, on the same variables. Random variables
  (no init compile) and one jitted gradient per model: the property is structural."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec.models import recognizer, tiny  # pylint: disable=g-import-not-at-top

  guided = tiny.tiny_rec(num_classes=12)
  free = recognizer.without_guide(guided)
  assert free.head.neck["use_guide"] is False and guided.head.neck["use_guide"] is True
  shapes = recognizer.variable_shapes(guided, height=48, width=128, text_len=12)
  v = train_utils.random_variables(shapes, seed=0)
  x = jax.random.uniform(jax.random.PRNGKey(1), (2, 48, 128, 3), minval=-1, maxval=1)

  def backbone_grad(model):
    def loss(p):
      return jnp.sum(model.apply(dict(v, params=p), x, train=False)["ctc_logits"] ** 2)
    g = jax.jit(jax.grad(loss))(v["params"])
    return (sum(float(jnp.abs(a).sum()) for a in jax.tree.leaves(g["backbone"])),
            sum(float(jnp.abs(a).sum()) for a in jax.tree.leaves(g["head"])))

  bb_guided, head_guided = backbone_grad(guided)
  bb_free, head_free = backbone_grad(free)
  assert bb_guided == 0.0 and head_guided > 0
  assert bb_free > 0 and np.isclose(head_free, head_guided, rtol=1e-5)
