"""Writes tests/fixtures/ from ../shared/fixtures: the Paddle references the tests compare with,
trimmed to what the tests read, so that a fresh clone (no ../shared) runs every parity test.

Provenance: everything under tests/fixtures/paddle_ref and tests/fixtures/paddle_infer is
generated from ../shared/fixtures/paddle_ref and ../shared/fixtures/paddle_infer (PaddleOCR's
own code and exporter run with PaddlePaddle on deterministic synthetic weights; their READMEs
say how) by this script:

  * manifest_<model>.json: per parameter only what a replay needs (name, shape, distribution,
    the BatchNorm calibration override), plus the counts the tests check;
  * io_<model>.npz: the rows of PaddleOCR's outputs on the synthetic inputs x[0:2] (regenerated
    at test time from numpy.random.default_rng(7), tests/paddle_ref.py), the calibrated
    BatchNorm statistics and the fused re-parameterised tensors;
  * genuine `paddle.save` / `inference.pdiparams` files as a splice: the file without its
    tensor data, gzipped, plus where each tensor's bytes come from (the replayed weights, the
    io npz, or a small npz of tensors the replay cannot give). tests/fixture_files.py puts them
    back and checks the sha256 of the genuine file;
  * the inference directories' program, yml and legacy `.pdiparams.info` gzipped; the
    per-tensor index of `.pdiparams` trimmed.

Licence: no IC15 image data is written. The fixtures' third input row x[2] is an ICDAR 2015
crop (research-use terms), so x[2], the stored images (real_img_*) and every output row
computed from it are dropped. What is kept are synthetic weights, PaddleOCR's outputs on
synthetic inputs, and per-channel BatchNorm statistics (aggregates over the fixture batch, from
which no image can be recovered).

One line per model in MODELS, PDPARAMS and INFER_DIRS adds a model once a test reads it.

Size: the PP-OCRv5 heads have 18385 classes, so each probabilities array [2, 40, 18385] is
5.9 MB in float32 and barely compresses. HALF lists the arrays stored as float16 instead
(half the bytes; the tests cast back to float32): float16 rounds values of 6.1e-5 and more
to within 4.9e-4 relative, smaller ones (subnormal) to within 3e-8 absolute, both well inside
the probabilities' parity tolerance (atol 1e-5, rtol 1e-3; PaddleOCR's own float32-vs-float64
error on them is 4.4e-7 absolute). Features, BN statistics and fused tensors stay float32.
ROW0 lists arrays kept for the first synthetic row only: PP-OCRv5_mobile_rec's deploy-form
probabilities (its deploy-form backbone features keep both rows, and the deploy form's head
is the training form's), which keeps the two PP-OCRv5 models under 8 MB together. The three
PP-OCRv6 models (18710 / 6906 classes) keep row 0 of both probabilities (float16) and of their
deploy-form features; their training-form features keep both rows. Of the probabilities only
the first time steps are kept (STEPS: 16 of 40 for the training form, 8 for the deploy form;
every step's features are checked in full), and of the fused deploy tensors those of at most
2**15 values (REPARAM_MAX; the deploy-form features check the rest): together the three add
under 5 MB.

  PYTHONPATH=$PWD python scripts/make_test_fixtures.py [--shared ../shared] [--out tests/fixtures]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import pathlib
import pickletools
import shutil
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import paddle_ref  # noqa: E402  pylint: disable=g-import-not-at-top

# model -> io keys kept (batch-first arrays: their synthetic rows only; a trailing "/" keeps a
# whole group of weight-like tensors). bn_calib/* is always kept: the replay needs it.
V6_KEYS = ("probs_train_form", "backbone_feat", "ctc_neck_feat", "probs_deploy_form",
           "backbone_feat_deploy_form", "deploy_reparam/")
MODELS = {
    "PP-OCRv4_mobile_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat",
                            "probs_deploy_form", "backbone_feat_deploy_form", "deploy_reparam/"),
    "PP-OCRv4_server_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat"),
    "ch_SVTRv2_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat"),
    "ch_RepSVTR_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat",
                       "backbone_feat_fused_form"),
    "PP-OCRv5_mobile_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat",
                            "probs_deploy_form", "backbone_feat_deploy_form", "deploy_reparam/"),
    "PP-OCRv5_server_rec": ("probs_train_form", "backbone_feat", "ctc_neck_feat"),
    "PP-OCRv6_small_rec": V6_KEYS,
    "PP-OCRv6_tiny_rec": V6_KEYS + ("ctc_guide_feat", "ctc_guide_feat_deploy_form"),
    "PP-OCRv6_medium_rec": V6_KEYS,
}
V6_MODELS = ("PP-OCRv6_small_rec", "PP-OCRv6_tiny_rec", "PP-OCRv6_medium_rec")
# model -> io keys stored as float16 (see "Size" above)
HALF = {
    "PP-OCRv5_mobile_rec": ("probs_train_form", "probs_deploy_form"),
    "PP-OCRv5_server_rec": ("probs_train_form",),
    **{m: ("probs_train_form", "probs_deploy_form") for m in V6_MODELS},
}
# model -> io keys kept for row 0 only (see "Size" above)
ROW0 = {"PP-OCRv5_mobile_rec": ("probs_deploy_form",),
        **{m: ("probs_train_form", "probs_deploy_form", "backbone_feat_deploy_form",
               "ctc_guide_feat_deploy_form") for m in V6_MODELS}}
# model -> {io key: time steps kept} (axis 1 of the probabilities [B, T, C]; see "Size")
STEPS = {m: {"probs_train_form": 16, "probs_deploy_form": 8} for m in V6_MODELS}
# model -> the largest fused tensor (elements) kept of deploy_reparam/* (see "Size")
REPARAM_MAX = {m: 2**15 for m in V6_MODELS}
# Manifest fields the tests read, besides the replay's.
TOP_KEYS = ("model", "seed", "n_params_total", "n_params_excl_nrtr")
INFO_KEYS = ("n_deploy_params_excl_nrtr", "n_fused_params_excl_nrtr",
             "pdparams_excluded_prefixes", "pdparams_n_params", "unused_in_eval_forward")
NAME_LISTS = ("deploy_params", "fused_params_not_paddleocr_export")
# genuine paddle.save files of paddle_ref -> the model whose replay holds their values
PDPARAMS = {
    "PP-OCRv4_mobile_rec.tiny_numpy2.pdparams": "PP-OCRv4_mobile_rec",
    "PP-OCRv4_mobile_rec.train_form_subset.pdparams": "PP-OCRv4_mobile_rec",
}
# paddle_infer folder -> its model (inference.pdiparams, where the folder has it, is spliced)
INFER_DIRS = {
    "PP-OCRv4_mobile_rec": "PP-OCRv4_mobile_rec",
    "PP-OCRv4_mobile_rec_legacy": "PP-OCRv4_mobile_rec",
    "PP-OCRv4_server_rec": "PP-OCRv4_server_rec",
    "ch_SVTRv2_rec": "ch_SVTRv2_rec",
    "ch_RepSVTR_rec": "ch_RepSVTR_rec",
}
LIMIT_BYTES = 30 * 2**20
GROUPS = ("bn_calib/", "deploy_reparam/")


def _sha(b: bytes) -> str:
  return hashlib.sha256(b).hexdigest()


def _gzip(data: bytes) -> bytes:
  return gzip.compress(data, compresslevel=9, mtime=0)


def _json(obj, path: pathlib.Path) -> None:
  path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def trim_manifest(m: dict, source: str) -> dict:
  """The replay's fields and the counts the tests check."""
  keep = ("name", "shape", "dist", "std", "low", "high", "override")
  out = {k: m[k] for k in TOP_KEYS if k in m}
  out["source"] = source
  out["info"] = {k: m["info"][k] for k in INFO_KEYS if k in m["info"]}
  out["params"] = [{k: e[k] for k in keep if k in e} for e in m["params"]]
  for k in NAME_LISTS:
    if k in m:
      out[k] = [{"name": e["name"], "shape": e["shape"]} for e in m[k]]
  return out


def trim_io(io, keep: tuple[str, ...], half: tuple[str, ...] = (),
            row0: tuple[str, ...] = (), steps: dict[str, int] | None = None,
            reparam_max: int | None = None) -> dict[str, np.ndarray]:
  x = paddle_ref.synthetic_x()
  assert np.array_equal(io["x"][:len(x)], x), "x[0:2] is no longer rng(7)'s draw"
  out = {}
  for k in io.files:
    if k.startswith(GROUPS) and (k.startswith("bn_calib/") or k.split("/")[0] + "/" in keep):
      if k.startswith("bn_calib/") or reparam_max is None or io[k].size <= reparam_max:
        out[k] = io[k]
    elif k in keep:
      out[k] = io[k][:1 if k in row0 else len(x)]  # batch-first: the synthetic rows
      if k in (steps or {}):
        out[k] = out[k][:, :steps[k]]
      if k in half:
        out[k] = out[k].astype(np.float16)
  return out


def write_models(shared: pathlib.Path, out: pathlib.Path) -> dict[str, tuple[dict, dict]]:
  """manifest + io per model; returns the replays from the written files, checked against
  the full manifests' per-tensor sha256."""
  src, dst = shared / "fixtures" / "paddle_ref", out / "paddle_ref"
  replays = {}
  for model, keep in MODELS.items():
    m = json.loads((src / f"manifest_{model}.json").read_text())
    _json(trim_manifest(m, f"../shared/fixtures/paddle_ref/manifest_{model}.json, trimmed by "
                           "scripts/make_test_fixtures.py"), dst / f"manifest_{model}.json")
    np.savez_compressed(dst / f"io_{model}.npz",
                        **trim_io(np.load(src / f"io_{model}.npz"), keep, HALF.get(model, ()),
                                  ROW0.get(model, ()), STEPS.get(model),
                                  REPARAM_MAX.get(model)))
    state, io = paddle_ref.replay(dst, model)
    for e in m["params"]:
      v = state[e["name"]]
      if e.get("override") == "bn_calib":
        assert np.array_equal(v, np.load(src / f"io_{model}.npz")["bn_calib/" + e["name"]])
      else:
        assert _sha(v.astype("<f4").tobytes()) == e["sha256_f32le"], (model, e["name"])
    replays[model] = (state, io)
    print(f"{model}: {len(state)} tensors replayed, sha256 as in the full manifest")
  return replays


def _sources(state: dict, io: dict) -> dict[str, str]:
  """sha256 of the bytes -> where a test finds them ("param:<name>" / "io:<key>")."""
  out = {_sha(np.ascontiguousarray(v).tobytes()): f"io:{k}" for k, v in io.items()
         if k.startswith(GROUPS)}
  out.update({_sha(v.tobytes()): f"param:{k}" for k, v in state.items()})
  return out


def write_splice(data: bytes, ranges: list[tuple[int, int]], model: str, sources: dict,
                 dst: pathlib.Path) -> int:
  """dst.splice.json / .skeleton.gz (/ .extra.npz): `data` without the byte ranges (start,
  length) that a replay gives back. Returns how many ranges went to the extra npz."""
  segments, extra, skeleton, pos, cut = [], {}, [], 0, 0
  for start, n in sorted(ranges):
    chunk = data[start:start + n]
    src = sources.get(_sha(chunk))
    if src is None:
      src = f"extra:{len(extra)}"
      extra[str(len(extra))] = np.frombuffer(chunk, np.uint8)
    skeleton.append(data[pos:start])
    cut += start - pos
    segments.append([cut, src])
    pos = start + n
  skeleton.append(data[pos:])
  _json({"model": model, "sha256": _sha(data), "bytes": len(data), "segments": segments},
        pathlib.Path(f"{dst}.splice.json"))
  pathlib.Path(f"{dst}.skeleton.gz").write_bytes(_gzip(b"".join(skeleton)))
  if extra:
    np.savez_compressed(f"{dst}.extra.npz", **extra)
  return len(extra)


def pickle_data_ranges(data: bytes) -> list[tuple[int, int]]:
  """(start, length) of every bytes argument of 16 bytes or more in a pickle stream."""
  prefix = {"SHORT_BINBYTES": 1, "BINBYTES": 4, "BINBYTES8": 8, "BYTEARRAY8": 8}
  return [(pos + 1 + prefix[op.name], len(arg)) for op, arg, pos in pickletools.genops(data)
          if op.name in prefix and len(arg) >= 16]


def write_pdparams(shared: pathlib.Path, out: pathlib.Path, replays) -> None:
  for fname, model in PDPARAMS.items():
    data = (shared / "fixtures" / "paddle_ref" / fname).read_bytes()
    sources = _sources(*replays[model])
    ranges = [r for r in pickle_data_ranges(data) if _sha(data[r[0]:sum(r)]) in sources]
    n_extra = write_splice(data, ranges, model, sources, out / "paddle_ref" / fname)
    assert n_extra == 0
    print(f"{fname}: {len(ranges)} tensors from the replay")


def write_infer_dirs(shared: pathlib.Path, out: pathlib.Path, replays) -> None:
  for folder, model in INFER_DIRS.items():
    src, dst = shared / "fixtures" / "paddle_infer" / folder, out / "paddle_infer" / folder
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
      if f.name == "pdiparams_index.json":
        index = json.loads(f.read_text())
        _json({"file_sha256": index["file_sha256"], "file_bytes": index["file_bytes"],
               "tensors": [{k: t[k] for k in ("dims", "data_offset", "nbytes", "sha256")}
                           for t in index["tensors"]]}, dst / f.name)
      elif f.name == "inference.pdiparams":
        index = json.loads((src / "pdiparams_index.json").read_text())
        ranges = [(t["data_offset"], t["nbytes"]) for t in index["tensors"]]
        n_extra = write_splice(f.read_bytes(), ranges, model, _sources(*replays[model]),
                               dst / f.name)
        print(f"{folder}/inference.pdiparams: {len(ranges) - n_extra} tensors from the "
              f"replay, {n_extra} stored")
      else:
        (dst / (f.name + ".gz")).write_bytes(_gzip(f.read_bytes()))


def check(shared: pathlib.Path, out: pathlib.Path) -> None:
  """No written file equals a ../shared file; the total stays under LIMIT_BYTES."""
  theirs = {hashlib.md5(p.read_bytes()).hexdigest(): p for p in shared.rglob("*")
            if p.is_file() and p.stat().st_size < 2**27 and "data" not in p.parts}
  total = 0
  for p in sorted(out.rglob("*")):
    if p.is_file():
      total += p.stat().st_size
      same = theirs.get(hashlib.md5(p.read_bytes()).hexdigest())
      assert same is None, f"{p} is byte-identical to {same}"
  print(f"{out}: {total / 2**20:.1f} MiB")
  assert total < LIMIT_BYTES, total


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--shared", type=pathlib.Path, default=REPO.parent / "shared")
  ap.add_argument("--out", type=pathlib.Path, default=REPO / "tests" / "fixtures")
  a = ap.parse_args()
  for sub in ("paddle_ref", "paddle_infer"):
    shutil.rmtree(a.out / sub, ignore_errors=True)
    (a.out / sub).mkdir(parents=True)
  replays = write_models(a.shared, a.out)
  write_pdparams(a.shared, a.out, replays)
  write_infer_dirs(a.shared, a.out, replays)
  check(a.shared, a.out)


if __name__ == "__main__":
  main()
