"""Data parallelism: the same global batches on 1 and on 4 (fake CPU) devices give the same
parameters. XLA_FLAGS must be set before jax is imported, so the run is a subprocess.

The optimiser here is clipped SGD with momentum, not the configs' Adam: several parameters of
the recogniser have a gradient that is exactly zero in exact arithmetic (a bias followed by a
train-mode BatchNorm, e.g. `.../dw_conv/act/lab/bias`), so what float32 computes for it is
summation noise (~1e-9), and Adam normalises that noise into a full +-lr step whose sign
depends on the summation order. Those parameters then differ by ~lr between any two
summation orders (1 vs 4 devices, or two XLA versions) without changing the function. SGD
keeps what is compared the data-parallel arithmetic: the global-batch loss, the BatchNorm
statistics over all devices' samples and the averaged gradient."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

SCRIPT = r"""
import sys
import jax, numpy as np, optax
sys.path.insert(0, "configs")
sys.path.insert(0, "tests")
import tiny
import train_utils
from textrec.training import train, train_state as ts
from textrec.models import recognizer, tiny as tiny_model

out, steps = sys.argv[1], 4
cfg = tiny.get_config()
assert jax.device_count() == 4, jax.devices()
model = tiny_model.tiny_rec(num_classes=18)
variables = train_utils.random_variables(
    recognizer.variable_shapes(model, height=48, width=128, text_len=12), seed=0)
tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9))
init = {jax.tree_util.keystr(k): np.asarray(v) for k, v in
        jax.tree_util.tree_flatten_with_path(variables["params"])[0]}
flat = {}
for n in (1, 4):  # the same batches on a 1-device mesh and on the 4-device mesh
  mesh = train.make_mesh(jax.devices()[:n])
  state = train.replicate(ts.create(variables, tx, seed=0), mesh)
  step = train.jit_train_step(model, tx, mesh, cfg.train)
  rng = np.random.default_rng(0)
  B, L = 8, 10
  losses = []
  for _ in range(steps):
    k = rng.integers(1, 6, B)
    ids = rng.integers(1, 18, (B, L)).astype(np.int32) * (np.arange(L) < k[:, None])
    nrtr = np.zeros((B, L + 2), np.int32)
    nrtr[:, 0] = 2
    for b in range(B):
      nrtr[b, 1:k[b] + 1] = ids[b, :k[b]] + 3
      nrtr[b, k[b] + 1] = 3
    batch = dict(image=rng.uniform(-1, 1, (B, 48, 128, 3)).astype(np.float32), label_ctc=ids,
                 label_ctc_pad=(np.arange(L) >= k[:, None]).astype(np.float32),
                 label_nrtr=nrtr)
    state, metrics = step(state, train.shard_batch(batch, mesh))
    losses.append(float(metrics["loss"]))
  assert state.params["head"]["ctc_head"]["fc"]["kernel"].sharding.mesh.size == n
  flat[f"{n}/losses"] = np.asarray(losses)
  flat.update({f"{n}/" + jax.tree_util.keystr(k): np.asarray(v) for k, v in
               jax.tree_util.tree_flatten_with_path(
                   {"p": state.params, "s": state.batch_stats})[0]})
  flat[f"{n}/moved"] = np.asarray(max(
      float(np.max(np.abs(np.asarray(v) - init[jax.tree_util.keystr(k)])))
      for k, v in jax.tree_util.tree_flatten_with_path(state.params)[0]))
np.savez(out, **flat)
"""


def test_one_device_equals_four_devices(tmp_path):
  """One process with 4 (fake CPU) devices trains on a 1-device mesh and on the 4-device mesh
  (one process start instead of two; random variables drawn in numpy, no init compile)."""
  out = tmp_path / "params.npz"
  r = train_utils.run([sys.executable, "-c", SCRIPT, str(out)], devices=4, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  res = dict(np.load(out))
  one = {k[2:]: v for k, v in res.items() if k.startswith("1/")}
  four = {k[2:]: v for k, v in res.items() if k.startswith("4/")}
  assert one.keys() == four.keys() and len(one) > 50
  np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-5)
  assert one["losses"][-1] < one["losses"][0]
  worst = max(float(np.max(np.abs(one[k] - four[k]))) for k in one if k != "losses")
  assert worst < 1e-5, worst
  # The steps did move the parameters: the comparison is not between two initial states.
  assert float(one["moved"]) > 1e-3
