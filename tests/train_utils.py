"""Helpers for the training tests: a small synthetic dataset and tiny-config runs."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
ALPHABET = "0123456789abcdef"


def make_dataset(out_dir: str | os.PathLike, n_train: int = 64, n_val: int = 16,
                 seed: int = 0) -> str:
  """PaddleX-layout dataset of 2-5 character strings drawn with cv2.putText (white on dark)."""
  out = pathlib.Path(out_dir)
  (out / "images").mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for split, n in (("train", n_train), ("val", n_val)):
    lines = []
    for i in range(n):
      text = "".join(rng.choice(list(ALPHABET), size=int(rng.integers(2, 6))))
      img = np.full((32, 16 * len(text) + 8, 3), int(rng.integers(0, 60)), np.uint8)
      cv2.putText(img, text, (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.75,
                  tuple(int(v) for v in rng.integers(180, 256, 3)), 2)
      rel = f"images/{split}_{i}.png"
      cv2.imwrite(str(out / rel), img)
      lines.append(f"{rel}\t{text}\n")
    (out / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
  (out / "dict.txt").write_text("".join(c + "\n" for c in ALPHABET), encoding="utf-8")
  return str(out)


def main_cmd(*overrides: str, config: str = "configs/tiny.py") -> list[str]:
  return [sys.executable, "-m", "textrec.main", f"--config={config}", *overrides]


def env(devices: int | None = None, **extra: str) -> dict[str, str]:
  e = dict(os.environ)
  e.update(extra)
  e.setdefault("TEXTREC_CACHE", str(REPO / ".pytest_cache" / "textrec_cache"))
  e["JAX_PLATFORMS"] = "cpu"
  if devices:
    e["XLA_FLAGS"] = (e.get("XLA_FLAGS", "") +
                      f" --xla_force_host_platform_device_count={devices}").strip()
  return e


def run(cmd: list[str], devices: int | None = None, timeout: float = 300,
        **extra: str) -> subprocess.CompletedProcess:
  return subprocess.run(cmd, cwd=REPO, env=env(devices, **extra), capture_output=True,
                        text=True, timeout=timeout)


def final_state(out: str | os.PathLike, steps: int) -> dict:
  """The last training checkpoint's state (params, opt_state, EMA, batch_stats, rng) of the
  run in `out`, which must have reached `steps`."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  with ocp.CheckpointManager(os.path.join(out, "checkpoints"), item_names=("state",)) as m:
    assert m.latest_step() == steps
    return m.restore(steps, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]


def assert_same_state(a: dict, b: dict) -> int:
  """Every leaf of two training states bitwise equal -> the number of leaves."""
  import jax  # pylint: disable=g-import-not-at-top

  leaves_a = jax.tree_util.tree_flatten_with_path(a)[0]
  leaves_b = dict(jax.tree_util.tree_flatten_with_path(b)[0])
  assert len(leaves_a) == len(leaves_b)
  for path, va in leaves_a:
    np.testing.assert_array_equal(np.asarray(va), np.asarray(leaves_b[path]),
                                  err_msg=jax.tree_util.keystr(path))
  return len(leaves_a)


def random_variables(shapes, seed: int = 0):
  """Random values for every variable of a `recognizer.variable_shapes` tree (numpy: no XLA
  compile, where jit-compiling a model's `init` takes 10-20 s on 2 CPU cores): positive
  variances, norm and LAB scales around 1, kernels ~ N(0, 1/fan_in), the rest ~ N(0, 0.1)."""
  import jax  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)

  def draw(path, v):
    name = jax.tree_util.keystr(path)
    if name.endswith("['var']"):
      return rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
    if name.endswith("['scale']"):
      return rng.uniform(0.7, 1.3, v.shape).astype(np.float32)
    if name.endswith("['kernel']"):
      return (rng.standard_normal(v.shape) / np.sqrt(np.prod(v.shape[:-1]))).astype(np.float32)
    return (0.1 * rng.standard_normal(v.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)
