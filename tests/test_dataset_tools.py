"""mode=check_dataset: passes on ic15, lists every planted problem with its line, re-splits."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

from textrec.data import dataset_tools
from textrec.data import demo
from textrec.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(dataset_dir, output_dir, **split):
  sys.path.insert(0, str(REPO / "configs"))
  try:
    import v4_mobile  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  c = v4_mobile.get_config()
  c.mode = "check_dataset"
  c.dataset_dir = str(dataset_dir) if dataset_dir else ""
  c.output_dir = str(output_dir)
  for k, v in split.items():
    setattr(c.check_dataset.split, k, v)
  return c


def _snapshot(d: pathlib.Path) -> dict[str, str]:
  """path -> sha1 of every file under d (to prove nothing was written there)."""
  return {str(p.relative_to(d)): hashlib.sha1(p.read_bytes()).hexdigest()
          for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture()
def small_ds(tmp_path) -> pathlib.Path:
  d = tmp_path / "ds"
  demo.generate(str(d), num_train=20, num_val=10, seed=3)
  return d


def test_ic15_passes(ic15_dir, tmp_path, capsys):
  before = sorted(os.listdir(ic15_dir))
  rc = dataset_tools.run(_config(ic15_dir, tmp_path / "out"))
  out = capsys.readouterr().out
  assert rc == 0, out
  assert "Check dataset passed !" in out
  r = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
  assert r["check_pass"] is True and r["done_flag"] is True and r["errors"] == []
  assert r["attributes"]["train_samples"] == 4468
  assert r["attributes"]["val_samples"] == 2077
  assert r["show_type"] == "image" and r["dataset_type"] == "MSTextRecDataset"
  assert (tmp_path / "out" / r["analysis"]["histogram"]).is_file()
  # every length is counted, train and val separately (PaddleX drops the last bin and
  # accumulates across splits; we must not)
  counts = r["analysis"]["length_counts"]
  assert sum(counts["train"].values()) == 4468
  assert sum(counts["val"].values()) == 2077
  for split in ("train", "val"):
    paths = r["attributes"][f"{split}_sample_paths"]
    assert len(paths) == 10
    assert all((tmp_path / "out" / p).is_file() for p in paths)
  assert sorted(os.listdir(ic15_dir)) == before


def test_corrupted_copy_lists_every_problem(small_ds, tmp_path, capsys):
  lines = (small_ds / "train.txt").read_text(encoding="utf-8").splitlines()
  # Plant one problem per line (1-based line numbers in the messages).
  lines[1] = f"images/does_not_exist.png\t{lines[1].split(chr(9))[1]}"        # line 2
  trunc = small_ds / lines[2].split("\t")[0]
  trunc.write_bytes(trunc.read_bytes()[:len(trunc.read_bytes()) // 2])        # line 3
  lines[3] = lines[3].replace("\t", " ")                                     # line 4
  lines[4] = lines[4].split("\t")[0] + "\t"                                  # line 5
  lines[5] = lines[5].split("\t")[0] + "\tcafé€"                             # line 6
  lines[6] = lines[6].split("\t")[0] + "\t" + "x" * 30                       # line 7
  (small_ds / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  before = _snapshot(small_ds)
  rc = dataset_tools.run(_config(small_ds, tmp_path / "out"))
  err = capsys.readouterr().err
  assert rc == 1
  r = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
  assert r["check_pass"] is False
  tf = str(small_ds / "train.txt")
  expected = {2: "image not found", 3: "corrupt", 4: "no tab", 5: "empty label",
              6: "not in the dictionary", 7: "more than max_text_length"}
  for line, reason in expected.items():
    hits = [e for e in r["errors"] if e.startswith(f"{tf}:{line}:") and reason in e]
    assert hits, (line, reason, r["errors"])
    assert any(h in err for h in hits)
  unknown = [e for e in r["errors"] if e.startswith(f"{tf}:6:")][0]
  assert "'é' x1" in unknown and "'€' x1" in unknown
  assert len(r["errors"]) == len(expected)
  assert r["attributes"]["train_samples"] == 20
  assert _snapshot(small_ds) == before


def test_missing_dict_and_dir(tmp_path, small_ds):
  os.remove(small_ds / "dict.txt")
  r = dataset_tools.run(_config(small_ds, tmp_path / "o1"))
  assert r == 1
  res = json.loads((tmp_path / "o1" / "check_dataset_result.json").read_text())
  assert any("dict.txt" in e for e in res["errors"])
  assert dataset_tools.run(_config(tmp_path / "nope", tmp_path / "o2")) == 1


def test_split_is_seeded_and_keeps_backups(small_ds, tmp_path):
  import shutil
  copy = tmp_path / "copy"
  shutil.copytree(small_ds, copy)
  orig = {s: (small_ds / f"{s}.txt").read_text(encoding="utf-8") for s in ("train", "val")}
  assert dataset_tools.run(_config(small_ds, tmp_path / "o", enable=True, train_percent=90,
                                   val_percent=10)) == 0
  for s in ("train", "val"):
    assert (small_ds / f"{s}.txt.bak").read_text(encoding="utf-8") == orig[s]
  train = (small_ds / "train.txt").read_text(encoding="utf-8").splitlines()
  val = (small_ds / "val.txt").read_text(encoding="utf-8").splitlines()
  assert len(train) == 27 and len(val) == 3
  assert sorted(train + val) == sorted((orig["train"] + orig["val"]).splitlines())
  # same seed, same split
  assert dataset_tools.run(_config(copy, tmp_path / "o2", enable=True, train_percent=90,
                                   val_percent=10)) == 0
  assert (copy / "train.txt").read_text(encoding="utf-8").splitlines() == train


@pytest.mark.parametrize("tp,vp", [(90, 20), (110, -10), (50, 40)])
def test_split_rejects_bad_percentages(small_ds, tmp_path, capsys, tp, vp):
  before = _snapshot(small_ds)
  with pytest.raises(UsageError, match="check_dataset.split"):
    dataset_tools.run(_config(small_ds, tmp_path / "o", enable=True, train_percent=tp,
                              val_percent=vp))
  assert _snapshot(small_ds) == before


def test_cli_exit_code(small_ds, tmp_path):
  (small_ds / "val.txt").write_text("images/nothing.png\tabc\n", encoding="utf-8")
  r = subprocess.run([sys.executable, "-m", "textrec.main", "--config=configs/v4_mobile.py",
                      "--config.mode=check_dataset", f"--config.dataset_dir={small_ds}",
                      f"--config.output_dir={tmp_path / 'o'}"],
                     cwd=REPO, capture_output=True, text=True, timeout=120)
  assert r.returncode == 1, r.stderr
  assert f"{small_ds / 'val.txt'}:1: image not found" in r.stderr


def test_demo_dataset_is_deterministic_and_checks(tmp_path, monkeypatch, capsys):
  a, b = tmp_path / "a", tmp_path / "b"
  demo.generate(str(a), num_train=12, num_val=4, seed=9)
  demo.generate(str(b), num_train=12, num_val=4, seed=9)
  assert _snapshot(a) == _snapshot(b)
  # the default dataset (dataset_dir == "") is the demo one, generated on first use
  monkeypatch.setenv("TEXTREC_CACHE", str(tmp_path / "cache"))
  rc = dataset_tools.run(_config("", tmp_path / "out"))
  assert rc == 0 and "Check dataset passed !" in capsys.readouterr().out
  r = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
  assert r["attributes"]["train_samples"] == demo.NUM_TRAIN
  assert r["attributes"]["val_samples"] == demo.NUM_VAL
  assert r["dataset_path"] == demo.demo_dataset_dir()
  assert not list((tmp_path / "cache" / "demo_data").glob(".*tmp*"))  # no leftovers


def test_demo_characters_are_in_the_official_dictionary(ppocr_keys):
  official = set(ppocr_keys.read_text(encoding="utf-8").split("\n"))
  assert set(demo.ALPHABET) <= official
