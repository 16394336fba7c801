"""Where the tests' reference data lives, and the files rebuilt from tests/fixtures.

* tests/fixtures (in the repository, written by scripts/make_test_fixtures.py): always there.
  Genuine Paddle files too big to ship (`.pdparams`, `inference.pdiparams`) are stored as a
  "splice": the file without its tensor data (`<file>.skeleton.gz`) plus where each tensor's
  bytes go and where they come from (`<file>.splice.json`: the replayed weights, the io npz,
  or `<file>.extra.npz`). `splice` puts them back and checks the whole file's sha256 against
  the genuine one's.
* ../shared (`shared_root`, or $TEXTREC_SHARED): optional datasets (IC15, ocr_images), absent
  on a user's clone.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import pathlib
import shutil

import numpy as np

import paddle_ref

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def shared_root() -> pathlib.Path:
  """$TEXTREC_SHARED, else ../shared beside the repository (may not exist)."""
  return pathlib.Path(os.environ.get("TEXTREC_SHARED", REPO.parent / "shared"))


def splice(spec_path: pathlib.Path, out: pathlib.Path, state: dict[str, np.ndarray],
           io: dict[str, np.ndarray]) -> pathlib.Path:
  """Writes the genuine file described by `<file>.splice.json` to `out`; raises if its
  sha256 is not the genuine file's."""
  spec = json.loads(spec_path.read_text())
  stem = str(spec_path)[:-len(".splice.json")]
  skeleton = gzip.decompress(pathlib.Path(stem + ".skeleton.gz").read_bytes())
  extra = np.load(stem + ".extra.npz") if os.path.exists(stem + ".extra.npz") else {}
  parts, pos = [], 0
  for offset, source in spec["segments"]:
    kind, key = source.split(":", 1)
    arr = {"param": state, "io": io, "extra": extra}[kind][key]
    parts += [skeleton[pos:offset], np.ascontiguousarray(arr).tobytes()]
    pos = offset
  data = b"".join(parts + [skeleton[pos:]])
  sha = hashlib.sha256(data).hexdigest()
  if sha != spec["sha256"]:
    raise AssertionError(f"{spec_path}: rebuilt file's sha256 {sha} is not {spec['sha256']}")
  out.write_bytes(data)
  return out


class _Replays:
  """Full replays (NRTR included) of the repository's paddle_ref models, made once."""

  def __init__(self):
    self._cache: dict[str, tuple[dict, dict]] = {}

  def __call__(self, model: str) -> tuple[dict, dict]:
    if model not in self._cache:
      self._cache[model] = paddle_ref.replay(FIXTURES / "paddle_ref", model)
    return self._cache[model]


def write_ppocr_keys(path: pathlib.Path) -> pathlib.Path:
  """PaddleOCR's ppocr_keys_v1 dictionary (6623 lines), as its exporter wrote it into the
  mobile fixture's inference.yml, to `path`."""
  import yaml  # pylint: disable=g-import-not-at-top

  yml = gzip.decompress((FIXTURES / "paddle_infer" / "PP-OCRv4_mobile_rec" /
                         "inference.yml.gz").read_bytes())
  chars = yaml.safe_load(yml)["PostProcess"]["character_dict"]
  path.write_text("\n".join(chars) + "\n", encoding="utf-8")
  return path


def build_pdparams_dir(out: pathlib.Path) -> pathlib.Path:
  """The genuine `paddle.save` files of tests/fixtures/paddle_ref, rebuilt under `out`."""
  replays = _Replays()
  out.mkdir(parents=True, exist_ok=True)
  for spec in sorted((FIXTURES / "paddle_ref").glob("*.pdparams.splice.json")):
    name = spec.name[:-len(".splice.json")]
    splice(spec, out / name, *replays(json.loads(spec.read_text())["model"]))
  return out


def build_paddle_infer_dir(out: pathlib.Path) -> pathlib.Path:
  """tests/fixtures/paddle_infer as Paddle wrote it: one inference directory per folder
  (gzipped files unpacked, `inference.pdiparams` rebuilt where a splice describes it)."""
  replays = _Replays()
  for src in sorted(p for p in (FIXTURES / "paddle_infer").iterdir() if p.is_dir()):
    dst = out / src.name
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
      if f.name.endswith(".splice.json"):
        splice(f, dst / f.name[:-len(".splice.json")],
               *replays(json.loads(f.read_text())["model"]))
      elif f.name.endswith((".skeleton.gz", ".extra.npz")):
        continue
      elif f.suffix == ".gz":
        (dst / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
      else:
        shutil.copy(f, dst / f.name)
  return out
