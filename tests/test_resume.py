"""Resumption: SIGKILL a training run mid-way, resume it with --config.train.resume=True,
and the final parameters equal those of a run that was never interrupted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from textrec.formats import checkpoint

sys.path.insert(0, os.path.dirname(__file__))
import train_utils  # noqa: E402

STEPS = 12  # checkpoints at 4, 8, 12; the kill comes after the first


def _cmd(data: str, out: str, *extra: str) -> list[str]:
  return train_utils.main_cmd(f"--config.dataset_dir={data}", f"--config.output_dir={out}",
                              f"--config.train.steps={STEPS}", "--config.train.save_every=4",
                              "--config.train.keep_last=10", "--config.train.log_every=4",
                              "--config.train.ema_decay=0.9", *extra)


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
  data = train_utils.make_dataset(tmp_path / "data", n_train=48, n_val=8)
  cache = str(tmp_path / "jax_cache")  # the three runs compile the same programs once
  env = dict(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  full = str(tmp_path / "full")
  r = train_utils.run(_cmd(data, full), timeout=900, **env)
  assert r.returncode == 0, r.stderr[-3000:]

  killed = str(tmp_path / "killed")
  p = subprocess.Popen(_cmd(data, killed), cwd=train_utils.REPO, env=train_utils.env(**env),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckdir = os.path.join(killed, "checkpoints")
  deadline = time.time() + 600
  try:
    while time.time() < deadline and p.poll() is None:
      steps = [int(d) for d in os.listdir(ckdir) if d.isdigit()] if os.path.isdir(ckdir) else []
      if steps and max(steps) >= 4:
        break
      time.sleep(0.2)
  finally:
    p.send_signal(signal.SIGKILL)
    p.wait()
  at_kill = sorted(int(d) for d in os.listdir(ckdir) if d.isdigit())
  assert at_kill and max(at_kill) < STEPS, f"the run was not killed mid-way: {at_kill}"

  r = train_utils.run(_cmd(data, killed, "--config.train.resume=True"), timeout=900, **env)
  assert r.returncode == 0, r.stderr[-3000:]
  log = open(os.path.join(killed, "train.log"), encoding="utf-8").read()
  assert "resumed from step" in log

  a = train_utils.final_state(full, STEPS)
  assert train_utils.assert_same_state(a, train_utils.final_state(killed, STEPS)) > 100
  va, _ = checkpoint.load_variables(full)
  vb, _ = checkpoint.load_variables(killed)
  for x, y in zip(jax.tree.leaves(va), jax.tree.leaves(vb)):
    np.testing.assert_array_equal(x, y)
