"""Data parallelism: the same global batches on 1 and on 4 (fake CPU) devices give the same
parameters. XLA_FLAGS must be set before jax is imported, so each run is a subprocess.

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

SCRIPT = r'''
import sys
import jax, numpy as np, optax
sys.path.insert(0, "configs")
import tiny
from textrec.training import train, train_state as ts
from textrec.models import recognizer, tiny as tiny_model

out, steps = sys.argv[1], 4
cfg = tiny.get_config()
assert jax.device_count() == int(sys.argv[2]), jax.devices()
model = tiny_model.tiny_rec(num_classes=18)
variables = jax.jit(lambda r: recognizer.init_variables(model, r, 48, 128, text_len=12))(
    jax.random.PRNGKey(0))
tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9))
mesh = train.make_mesh()
state = train.replicate(ts.create(variables, tx, seed=0), mesh)
step = train.jit_train_step(model, tx, mesh, cfg.train)
rng = np.random.default_rng(0)
B, L = 8, 10
losses = []
init = {jax.tree_util.keystr(k): np.asarray(v) for k, v in
        jax.tree_util.tree_flatten_with_path(variables["params"])[0]}
for _ in range(steps):
  n = rng.integers(1, 6, B)
  ids = rng.integers(1, 18, (B, L)).astype(np.int32) * (np.arange(L) < n[:, None])
  nrtr = np.zeros((B, L + 2), np.int32)
  nrtr[:, 0] = 2
  for b in range(B):
    nrtr[b, 1:n[b] + 1] = ids[b, :n[b]] + 3
    nrtr[b, n[b] + 1] = 3
  batch = dict(image=rng.uniform(-1, 1, (B, 48, 128, 3)).astype(np.float32), label_ctc=ids,
               label_ctc_pad=(np.arange(L) >= n[:, None]).astype(np.float32), label_nrtr=nrtr)
  state, metrics = step(state, train.shard_batch(batch, mesh))
  losses.append(float(metrics["loss"]))
flat = {"losses": np.asarray(losses)}
flat.update({jax.tree_util.keystr(k): np.asarray(v) for k, v in
        jax.tree_util.tree_flatten_with_path({"p": state.params, "s": state.batch_stats})[0]})
moved = max(float(np.max(np.abs(np.asarray(v) - init[jax.tree_util.keystr(k)])))
            for k, v in jax.tree_util.tree_flatten_with_path(state.params)[0])
flat["moved"] = np.asarray(moved)
np.savez(out, **flat)
'''


def _run(tmp_path, devices: int) -> dict[str, np.ndarray]:
  out = tmp_path / f"params_{devices}.npz"
  r = train_utils.run([sys.executable, "-c", SCRIPT, str(out), str(devices)], devices=devices,
                      timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  return dict(np.load(out))


def test_one_device_equals_four_devices(tmp_path):
  one = _run(tmp_path, 1)
  four = _run(tmp_path, 4)
  assert one.keys() == four.keys() and len(one) > 50
  np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-5)
  assert one["losses"][-1] < one["losses"][0]
  worst = max(float(np.max(np.abs(one[k] - four[k]))) for k in one if k != "losses")
  assert worst < 1e-5, worst
  # The steps did move the parameters: the comparison is not between two initial states.
  assert float(one["moved"]) > 1e-3
