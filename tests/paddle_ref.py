"""Replays the deterministic PaddleOCR-named weights of a paddle_ref fixture folder.

Two folders hold the same models: tests/fixtures/paddle_ref (in the repository, written by
scripts/make_test_fixtures.py: trimmed manifests, the synthetic rows of `x` and what PaddleOCR
computed on them) and ../shared/fixtures/paddle_ref (the full original, batch of 3 with an
IC15 crop). `replay` reads either; draw order, rules and the BatchNorm calibration overrides
follow ../shared/fixtures/paddle_ref/README.md.
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

SEED = 20261123  # the weights' generator (README)
X_SEED, N_SYNTHETIC = 7, 2  # x[0:2] = rng(7).uniform(-1, 1, [2, 3, 48, 320])


def synthetic_x() -> np.ndarray:
  """The synthetic rows of the fixtures' batch: f32[2, 3, 48, 320] (NCHW)."""
  rng = np.random.default_rng(X_SEED)
  return rng.uniform(-1, 1, size=(N_SYNTHETIC, 3, 48, 320)).astype(np.float32)


def load_io(fixture_dir: pathlib.Path, model: str) -> dict[str, np.ndarray]:
  """io_<model>.npz as a dict, with `x` regenerated where the folder does not store it."""
  io = dict(np.load(fixture_dir / f"io_{model}.npz"))
  if "x" not in io:
    io["x"] = synthetic_x()
  return io


def draw(rng: np.random.Generator, e: dict) -> np.ndarray:
  """One manifest entry's draw (float64, scaled, cast to float32)."""
  shape = tuple(e["shape"])
  if e["dist"] == "normal":
    return (rng.standard_normal(size=shape) * e["std"]).astype(np.float32)
  if e["dist"] == "uniform":
    return rng.uniform(e["low"], e["high"], size=shape).astype(np.float32)
  raise ValueError(f"unknown dist {e['dist']!r} for {e['name']}")


def replay(fixture_dir: pathlib.Path, model: str, stop_after: str | None = None,
           check_sha: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """-> (state_dict {paddle name: f32 array}, io dict). `check_sha` compares each draw with
  the manifest's `sha256_f32le` (the ../shared manifests; the repository's drop it)."""
  man = manifest(fixture_dir, model)
  io = load_io(fixture_dir, model)
  rng = np.random.default_rng(man.get("seed", SEED))
  out: dict[str, np.ndarray] = {}
  for e in man["params"]:
    v = draw(rng, e)
    if check_sha and hashlib.sha256(v.astype("<f4").tobytes()).hexdigest() != e["sha256_f32le"]:
      raise AssertionError(f"replay mismatch at {e['name']}")
    if e.get("override") == "bn_calib":
      v = io["bn_calib/" + e["name"]].astype(np.float32)
    out[e["name"]] = v
    if stop_after is not None and e["name"] == stop_after:
      break
  return out, io


def manifest(fixture_dir: pathlib.Path, model: str) -> dict:
  return json.loads((fixture_dir / f"manifest_{model}.json").read_text())
