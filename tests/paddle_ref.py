"""Replays the deterministic PaddleOCR-named weights of ../shared/fixtures/paddle_ref.

`replay(fixture_dir, model)` -> (state_dict {paddle name: float32 array}, io npz dict).
Draw order, rules and the BatchNorm calibration overrides follow the folder's README.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np


def replay(fixture_dir: pathlib.Path, model: str, stop_after: str | None = None,
           check_sha: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  manifest = json.loads((fixture_dir / f"manifest_{model}.json").read_text())
  io = dict(np.load(fixture_dir / f"io_{model}.npz"))
  rng = np.random.default_rng(manifest["seed"] if "seed" in manifest else 20261123)
  out: dict[str, np.ndarray] = {}
  for e in manifest["params"]:
    shape = tuple(e["shape"])
    if e["dist"] == "normal":
      v = (rng.standard_normal(size=shape) * e["std"]).astype(np.float32)
    elif e["dist"] == "uniform":
      v = rng.uniform(e["low"], e["high"], size=shape).astype(np.float32)
    else:
      raise ValueError(f"unknown dist {e['dist']!r} for {e['name']}")
    if check_sha:
      import hashlib
      if hashlib.sha256(v.astype("<f4").tobytes()).hexdigest() != e["sha256_f32le"]:
        raise AssertionError(f"replay mismatch at {e['name']}")
    if e.get("override") == "bn_calib":
      v = io["bn_calib/" + e["name"]].astype(np.float32)
    out[e["name"]] = v
    if stop_after is not None and e["name"] == stop_after:
      break
  return out, io


def manifest(fixture_dir: pathlib.Path, model: str) -> dict:
  return json.loads((fixture_dir / f"manifest_{model}.json").read_text())
