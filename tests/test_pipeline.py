"""Grain pipelines: determinism, bucket shapes, resume, sharding, shared preprocessing, bad input."""
from __future__ import annotations

import importlib.util
import os
import pathlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textrec import charset as charset_lib
from textrec.inference import preprocess
from textrec.data import demo, labels, pipeline, source

REPO = pathlib.Path(__file__).resolve().parents[1]
KEYS = {"image", "label_ctc", "label_ctc_pad", "length", "label_nrtr", "valid_ratio", "index",
        "mask", "replaced"}


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> str:
  d = tmp_path_factory.mktemp("demo")
  demo.generate(str(d), num_train=40, num_val=13, seed=5)
  return str(d)


@pytest.fixture(scope="module")
def enc(ds) -> labels.LabelEncoder:
  return labels.LabelEncoder(charset_lib.load_dict(os.path.join(ds, "dict.txt")), 25)


def _train(ds, enc, seed=0, n=6, **kw):
  src, _ = source.open_split(ds, "train")
  kw.setdefault("shard", (0, 1))
  it, info = pipeline.train_iter(src, enc, 8, seed=seed, **kw)
  return [next(it) for _ in range(n)], info


def _eq(a, b):
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_scale_shapes_keep_pixels_constant():
  assert pipeline.scale_shapes(16) == [(320, 32, 16), (320, 48, 10), (320, 64, 8)]
  assert pipeline.scale_shapes(192) == [(320, 32, 192), (320, 48, 128), (320, 64, 96)]
  assert pipeline.scale_shapes(16, batch_multiple=4) == [(320, 32, 16), (320, 48, 8),
                                                         (320, 64, 8)]


def test_same_seed_same_batches_and_bucket_shapes(ds, enc):
  a, info = _train(ds, enc, seed=1)
  b, _ = _train(ds, enc, seed=1)
  c, _ = _train(ds, enc, seed=2)
  assert all(_eq(x, y) for x, y in zip(a, b))
  assert not all(_eq(x, y) for x, y in zip(a, c))
  allowed = {(h, w, bs) for w, h, bs in info["shapes"]}
  assert info["shapes"] == pipeline.scale_shapes(8)
  for x in a:
    assert set(x) == KEYS
    B, H, W, C = x["image"].shape
    assert (H, W, B) in allowed and C == 3
    assert x["image"].dtype == np.float32 and x["label_ctc"].dtype == np.int32
    assert x["label_ctc"].shape == (B, 25) and x["label_nrtr"].shape == (B, 27)
    assert x["length"].shape == x["valid_ratio"].shape == x["mask"].shape == (B,)
    assert (x["mask"] == 1).all()
    assert np.abs(x["image"]).max() <= 1.0


def test_augment_probabilities_zero_is_no_augment_and_one_changes_every_image(ds, enc):
  off, _ = _train(ds, enc, n=2, augment_on=False, multi_scale=False)
  zero, _ = _train(ds, enc, n=2, augment_on=True, multi_scale=False, aug_prob=0.0,
                   concat_prob=0.0)
  one, _ = _train(ds, enc, n=2, augment_on=True, multi_scale=False, aug_prob=1.0,
                  concat_prob=0.0)
  assert all(_eq(a, b) for a, b in zip(off, zero))
  for a, b in zip(off, one):
    np.testing.assert_array_equal(a["label_ctc"], b["label_ctc"])  # no concatenation
    assert all(not np.array_equal(x, y) for x, y in zip(a["image"], b["image"]))


def test_no_augment_uses_the_predict_preprocessing(ds, enc):
  batches, _ = _train(ds, enc, n=3, augment_on=False)
  src, _ = source.open_split(ds, "train")
  for b in batches:
    _, H, W, _ = b["image"].shape
    for i, idx in enumerate(b["index"]):
      rec = src[int(idx)]
      img = cv2.imread(os.path.join(ds, src.entries[int(idx)].path))
      np.testing.assert_array_equal(b["image"][i], preprocess.resize_norm(img, W, height=H))
      assert enc.decode_ctc(b["label_ctc"][i], int(b["length"][i])) == rec["text"]


def test_resume_from_state(ds, enc):
  src, _ = source.open_split(ds, "train")
  it, _ = pipeline.train_iter(src, enc, 8, seed=3, shard=(0, 1))
  for _ in range(4):
    next(it)
  state = it.get_state()
  want = [next(it) for _ in range(3)]
  it2, _ = pipeline.train_iter(src, enc, 8, seed=3, shard=(0, 1))
  it2.set_state(state)
  assert all(_eq(x, next(it2)) for x in want)


def test_worker_processes_give_the_same_batches(ds, enc):
  a, _ = _train(ds, enc, n=3)
  b, _ = _train(ds, enc, n=3, num_workers=2)
  assert all(_eq(x, y) for x, y in zip(a, b))


def test_replaced_records_are_counted_in_the_batches_also_by_workers(ds, enc, tmp_path):
  """An unreadable image is replaced by the next record; each batch says how many records it
  skipped, so the count reaches the training loop from Grain's worker processes too."""
  import shutil  # pylint: disable=g-import-not-at-top

  d = tmp_path / "ds"
  shutil.copytree(ds, d)
  src, _ = source.open_split(str(d), "train")
  for i in (0, 7):  # two unreadable images
    (d / src.entries[i].path).write_bytes(b"not an image")
  kw = dict(multi_scale=False, augment_on=False)  # each record once per epoch
  n = 2 * pipeline.train_dataset(src, enc, 8, shard=(0, 1), **kw)[1]["batches_per_epoch"]
  assert n * 8 == 2 * len(src)
  a, _ = _train(str(d), enc, n=n, **kw)
  b, _ = _train(str(d), enc, n=n, num_workers=2, **kw)
  assert all(_eq(x, y) for x, y in zip(a, b))
  assert sum(int(x["replaced"].sum()) for x in a) == 4  # each bad record once per epoch
  assert all((x["replaced"] >= 0).all() and x["replaced"].shape == x["mask"].shape for x in a)


def test_epochs_and_process_shards(ds, enc):
  src, _ = source.open_split(ds, "train")
  seen = []
  for p in range(2):
    ds_, info = pipeline.train_dataset(src, enc, 4, seed=0, augment_on=False, shard=(p, 2),
                                       multi_scale=False)
    idx = np.concatenate([ds_[k]["index"] for k in range(info["batches_per_epoch"])])
    seen.append(set(idx.tolist()))
    assert len(set(idx.tolist())) == 20  # its half of the 40 records, each at least once
  assert not seen[0] & seen[1]


def test_eval_every_record_once(ds, enc):
  src, _ = source.open_split(ds, "val")
  it, info = pipeline.eval_iter(src, enc, 4, shard=(0, 1))
  batches = list(it)
  assert len(batches) == info["num_batches"] == 4  # 13 records -> 3 full + 1 padded
  idx = np.concatenate([b["index"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  assert sorted(idx[mask == 1].tolist()) == list(range(13))
  assert (idx[mask == 0] == -1).all() and mask.sum() == 13
  b = batches[0]
  img = cv2.imread(os.path.join(ds, src.entries[int(b["index"][0])].path))
  np.testing.assert_array_equal(b["image"][0], preprocess.resize_norm(img, 320))
  # two processes: same number of batches, disjoint halves covering everything
  parts = []
  for p in range(2):
    it, info2 = pipeline.eval_iter(src, enc, 4, shard=(p, 2))
    bs = list(it)
    assert len(bs) == info2["num_batches"] == 2
    parts.append({int(i) for b in bs for i, m in zip(b["index"], b["mask"]) if m})
  assert parts[0] | parts[1] == set(range(13)) and not parts[0] & parts[1]


def test_drops_are_counted_and_never_served(tmp_path, ds, enc):
  lines = open(os.path.join(ds, "train.txt"), encoding="utf-8").read().splitlines()
  p0 = lines[0].split("\t")[0]
  extra = [f"{p0}\t{'a' * 24}", f"{p0}\t{'b' * 30}", f"{p0}\t中文", f"{p0}\t"]
  lf = tmp_path / "train.txt"
  lf.write_text("\n".join(lines[:10] + extra) + "\n", encoding="utf-8")
  entries, problems = source.parse_label_file(str(lf))
  assert problems == []
  src = source.LabelFileSource(ds, entries)
  d, info = pipeline.train_dataset(src, enc, 4, augment_on=False, shard=(0, 1),
                                   multi_scale=False)
  assert info["kept"] == 10 and sum(info["drops"].values()) == 4
  assert info["drops"][labels.DROP_NRTR_LONG] == 1
  idx = np.concatenate([d[k]["index"] for k in range(3 * info["batches_per_epoch"])])
  assert idx.max() < 10


def test_bad_image_is_replaced_with_a_message(tmp_path, ds, enc, caplog):
  lines = open(os.path.join(ds, "train.txt"), encoding="utf-8").read().splitlines()[:6]
  lines[2] = "images/missing.png\tabc"
  bad = tmp_path / "bad.png"
  bad.write_bytes(b"not a png")
  lines[3] = f"{bad}\tdef"
  lf = tmp_path / "train.txt"
  lf.write_text("\n".join(lines) + "\n", encoding="utf-8")
  entries, _ = source.parse_label_file(str(lf))
  src = source.LabelFileSource(ds, entries)
  d, info = pipeline.train_dataset(src, enc, 6, shard=(0, 1), multi_scale=False)
  with caplog.at_level("WARNING"):
    b = d[0]
  assert b["image"].shape[0] == 6
  assert {2, 3}.isdisjoint(set(b["index"].tolist()))
  # counted in the batch: the slot of record 2 skips 2 and 3, the slot of record 3 skips 3
  assert sorted(b["replaced"].tolist()) == [0, 0, 0, 0, 1, 2]
  msgs = " ".join(r.getMessage() for r in caplog.records)
  assert f"{lf}:3: image not found" in msgs and f"{lf}:4: image cannot be decoded" in msgs


def test_all_bad_raises_a_clear_error(tmp_path, ds, enc):
  lf = tmp_path / "train.txt"
  lf.write_text("".join(f"images/none{i}.png\tabc\n" for i in range(5)), encoding="utf-8")
  entries, _ = source.parse_label_file(str(lf))
  d, _ = pipeline.train_dataset(source.LabelFileSource(ds, entries), enc, 2, shard=(0, 1),
                                multi_scale=False)
  with pytest.raises(source.DataError, match="dropped or unreadable"):
    d[0]


line_st = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda a, b: f"{a}\t{b}".encode("utf-8", "surrogatepass"),
              st.sampled_from(["images/x.png", "img.png", "", "../a.png"]),
              st.text(max_size=30)))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_st, max_size=8), img=st.binary(max_size=64))
def test_random_bad_inputs_never_crash_silently(tmp_path, enc, lines, img):
  d = tmp_path / "rand"
  (d / "images").mkdir(parents=True, exist_ok=True)
  (d / "images" / "x.png").write_bytes(img)
  lf = d / "train.txt"
  lf.write_bytes(b"\n".join(lines) + b"\n")
  try:
    entries, problems = source.parse_label_file(str(lf))
  except UnicodeEncodeError:
    return
  for p in problems:
    assert p.startswith(f"{lf}:") and ": " in p
  try:
    ds_, info = pipeline.train_dataset(source.LabelFileSource(str(d), entries), enc, 2,
                                       shard=(0, 1), multi_scale=False)
    b = ds_[0]
    assert b["image"].shape == (2, 48, 320, 3)
  except (source.DataError, ValueError) as e:
    assert str(e), "an error must say what is wrong"
    assert str(lf) in str(e) or "usable sample" in str(e)


def _to_arrayrecord():
  spec = importlib.util.spec_from_file_location("to_arrayrecord",
                                                REPO / "scripts" / "to_arrayrecord.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_arrayrecord_source_gives_the_same_batches(tmp_path, ds, enc):
  pytest.importorskip("array_record", reason="the data extra (array-record) is not installed: "
                      "pip install 'textrec[data]'")
  out = tmp_path / "ar"
  assert _to_arrayrecord().convert(ds, str(out), num_shards=3) == []
  ar, _ = source.open_split(str(out), "train")
  lf, _ = source.open_split(ds, "train")
  assert isinstance(ar, source.ArrayRecordSource) and len(ar) == len(lf) == 40
  assert ar.texts() == lf.texts()
  a, _ = pipeline.train_dataset(ar, enc, 8, seed=4, shard=(0, 1))
  b, _ = pipeline.train_dataset(lf, enc, 8, seed=4, shard=(0, 1))
  for k in range(3):
    assert _eq(a[k], b[k])
  ea, _ = pipeline.eval_iter(source.open_split(str(out), "val")[0], enc, 8, shard=(0, 1))
  eb, _ = pipeline.eval_iter(source.open_split(ds, "val")[0], enc, 8, shard=(0, 1))
  assert all(_eq(x, y) for x, y in zip(ea, eb))
  with pytest.raises(source.DataError, match="bad magic"):
    source.decode_record(b"garbage!", "somewhere")


def test_from_config_defaults_to_demo(monkeypatch, tmp_path):
  monkeypatch.setenv("TEXTREC_CACHE", str(tmp_path / "cache"))
  import sys
  sys.path.insert(0, str(REPO / "configs"))
  try:
    import v4_mobile  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  c = v4_mobile.get_config()
  c.train.batch_size = 4
  c.data.num_workers = 0
  it, info = pipeline.train_iter_from_config(c)
  assert info["dataset_dir"] == demo.demo_dataset_dir()
  assert info["dataset_dir"].startswith(str(tmp_path / "cache"))
  assert next(it)["image"].shape[0] in {b for _, _, b in info["shapes"]}
  ev, einfo = pipeline.eval_iter_from_config(c)
  assert next(ev)["image"].shape == (c.evaluate.batch_size, 48, 320, 3)
  assert einfo["kept"] == demo.NUM_VAL
