"""mode=check_dataset: validate a PaddleX text-recognition dataset, analyse it, optionally re-split.

  python -m textrec.main --config=configs/v4_mobile.py --config.mode=check_dataset \
      --config.dataset_dir=DIR --config.output_dir=OUT

Writes OUT/check_dataset_result.json (PaddleX's fields + `errors` + `warnings`),
OUT/check_dataset/histogram.png and sample pictures under OUT/check_dataset/demo_img/.
Each problem is printed as `file:line: reason`; exit code 1 when any is found. Nothing is
written into the dataset dir, except by the re-split (check_dataset.split.enable), which keeps
the previous lists as train.txt.bak / val.txt.bak.
"""
from __future__ import annotations

import collections
import io
import json
import math
import os
import shutil
import sys
from typing import Any

import numpy as np

from textrec import files
from textrec import charset as charset_lib
from textrec.data import labels, pipeline, source
from textrec.errors import UsageError

SPLITS = ("train", "val")
HIST_INTERVAL = 5
HIST_MAX = 100


def split_dataset(dataset_dir: str, train_percent: int, val_percent: int, seed: int = 0
                  ) -> tuple[int, int]:
  """Merges train.txt + val.txt, shuffles with `seed`, rewrites them by the percentages.

  The first re-split keeps the originals as `.bak` (later ones leave the `.bak` alone, as
  PaddleX). Returns (train lines, val lines).
  """
  for name, p in (("train_percent", train_percent), ("val_percent", val_percent)):
    if not 0 <= p <= 100:
      raise UsageError(f"check_dataset.split.{name}={p}: must be within 0..100")
  if train_percent + val_percent != 100:
    raise UsageError(f"check_dataset.split: train_percent + val_percent = "
                     f"{train_percent + val_percent}; must be 100")
  lines = []
  found = False
  for split in SPLITS:
    path = os.path.join(dataset_dir, f"{split}.txt")
    if os.path.isfile(path):
      found = True
      with open(path, "rb") as f:
        for raw in f:
          if raw.strip():
            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
  if not found:
    raise FileNotFoundError(f"{dataset_dir}: neither train.txt nor val.txt to split")
  order = np.random.default_rng(seed).permutation(len(lines))
  lines = [lines[i] for i in order]
  n_train = round(len(lines) * train_percent / 100)
  parts = {"train": lines[:n_train], "val": lines[n_train:]}
  for split in SPLITS:
    path = os.path.join(dataset_dir, f"{split}.txt")
    if os.path.isfile(path) and not os.path.exists(path + ".bak"):
      os.replace(path, path + ".bak")
    files.atomic_write(path, b"".join(parts[split]))
  return len(parts["train"]), len(parts["val"])


def _check_image(path: str, where: str) -> str | None:
  """None if `path` is a readable, decodable, non-empty image, else `where: reason`."""
  if not os.path.isfile(path):
    return f"{where}: image not found: {path}"
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    return f"{where}: cannot read image {path}: {e}"
  try:
    pipeline.decode_image(data, where)
  except source.DataError as e:
    return f"{e} ({path})"
  try:  # cv2 may decode a truncated file partially; PIL's full load catches that
    import PIL.Image
    with PIL.Image.open(io.BytesIO(data)) as im:
      im.load()
  except Exception as e:  # noqa: BLE001 - any decoder error is a bad image
    return f"{where}: image is truncated or corrupt ({path}): {e}"
  return None


def check_split(dataset_dir: str, split: str, cs: charset_lib.Charset, max_text_length: int
                ) -> tuple[dict[str, Any], list[str], list[str]]:
  """Returns (stats, errors, warnings) for DIR/{split}.txt."""
  label_file = os.path.join(dataset_dir, f"{split}.txt")
  if not os.path.isfile(label_file):
    return dict(samples=0, lengths=[], paths=[]), [f"{label_file}: file not found"], []
  entries, errors = source.parse_label_file(label_file)
  n = len(entries) + len(errors)  # every non-blank line is a sample (PaddleX counts lines)
  enc = labels.LabelEncoder(cs, max_text_length)
  warnings = []
  lengths, paths = [], []
  nrtr_drops = 0
  for e in entries:
    path = os.path.join(dataset_dir, e.path)
    err = _check_image(path, e.where)
    if err:
      errors.append(err)
    else:
      paths.append(path)
    lengths.append(len(e.text))
    if e.text == "":
      errors.append(f"{e.where}: empty label")
      continue
    unknown = collections.Counter(cs.unknown(e.text))
    if unknown:
      desc = ", ".join(f"{c!r} x{n}" for c, n in unknown.most_common())
      errors.append(f"{e.where}: characters not in the dictionary: {desc}")
    if len(e.text) > max_text_length:
      errors.append(f"{e.where}: label has {len(e.text)} characters, more than "
                    f"max_text_length={max_text_length}")
    elif not unknown and enc.drop_reason(e.text) == labels.DROP_NRTR_LONG:
      nrtr_drops += 1
      warnings.append(f"{e.where}: {len(e.text)} characters; PaddleOCR's MultiLabelEncode "
                      f"drops labels of >= {max_text_length - 1} (training skips it)")
  return dict(samples=n, lengths=lengths, paths=paths, nrtr_drops=nrtr_drops), errors, warnings


def length_histogram(lengths: list[int]) -> dict[str, int]:
  """Label lengths in (a, a+5] bins, every length counted (0 in its own bin, > 100 last)."""
  counts: dict[str, int] = {}
  if not lengths:
    return counts
  if any(n == 0 for n in lengths):
    counts["0"] = sum(1 for n in lengths if n == 0)
  top = min(HIST_MAX, max(lengths))
  for start in range(0, max(HIST_INTERVAL, math.ceil(top / HIST_INTERVAL) * HIST_INTERVAL),
                     HIST_INTERVAL):
    stop = start + HIST_INTERVAL
    counts[f"{start}-{stop}"] = sum(1 for n in lengths if start < n <= stop)
  over = sum(1 for n in lengths if n > HIST_MAX)
  if over:
    counts[f"> {HIST_MAX}"] = over
  return counts


def plot_histogram(hists: dict[str, dict[str, int]], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  keys: list[str] = []
  for h in hists.values():
    keys += [k for k in h if k not in keys]
  fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
  x = np.arange(len(keys))
  width = 0.8 / max(1, len(hists))
  for i, (split, h) in enumerate(hists.items()):
    ax.bar(x + i * width, [h.get(k, 0) for k in keys], width=width, label=split)
  ax.set_xticks(x + width * (len(hists) - 1) / 2, keys, rotation=90)
  ax.set_xlabel("label length (characters)")
  ax.set_ylabel("images")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def check(dataset_dir: str, output_dir: str, cs: charset_lib.Charset | None,
          max_text_length: int = 25, num_samples: int = 10, dict_problem: str | None = None
          ) -> dict[str, Any]:
  """Runs every check, writes the outputs, returns the result dict (PaddleX's fields)."""
  import cv2
  cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # we report problems
  errors: list[str] = [dict_problem] if dict_problem else []
  warnings: list[str] = []
  stats = {}
  if not os.path.isdir(dataset_dir):
    errors.append(f"{dataset_dir}: dataset directory not found")
  else:
    for split in SPLITS:
      st, err, warn = check_split(dataset_dir, split, cs or charset_lib.Charset(()),
                                  max_text_length)
      if cs is None:  # no dictionary: unknown-character errors would be noise
        err = [e for e in err if "not in the dictionary" not in e]
      stats[split] = st
      errors += err
      warnings += warn
  check_dir = os.path.join(output_dir, "check_dataset")
  os.makedirs(check_dir, exist_ok=True)
  sample_paths = {}
  for split in SPLITS:
    rels = []
    for p in stats.get(split, {}).get("paths", [])[:num_samples]:
      dst_dir = os.path.join(check_dir, "demo_img", split)
      os.makedirs(dst_dir, exist_ok=True)
      shutil.copyfile(p, os.path.join(dst_dir, os.path.basename(p)))
      rels.append(os.path.join("check_dataset", "demo_img", split, os.path.basename(p)))
    sample_paths[split] = rels
  hists = {s: length_histogram(stats[s]["lengths"]) for s in SPLITS if s in stats}
  analysis = {}
  if hists:
    plot_histogram(hists, os.path.join(check_dir, "histogram.png"))
    analysis = {"histogram": os.path.join("check_dataset", "histogram.png"),
                "length_counts": hists}
  result = {
      "done_flag": True,
      "check_pass": not errors,
      "attributes": {
          "train_samples": stats.get("train", {}).get("samples", 0),
          "train_sample_paths": sample_paths.get("train", []),
          "val_samples": stats.get("val", {}).get("samples", 0),
          "val_sample_paths": sample_paths.get("val", []),
      },
      "analysis": analysis,
      "dataset_path": dataset_dir,
      "show_type": "image",
      "dataset_type": "MSTextRecDataset",
      "errors": errors,
      "warnings": warnings,
  }
  with open(os.path.join(output_dir, "check_dataset_result.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, ensure_ascii=False, indent=2)
  return result


def run(config) -> int:
  """Entry point of mode=check_dataset. Returns 0 when the dataset passes, 1 when not; a bad
  split configuration raises UsageError (the CLI's exit code 2)."""
  dataset_dir = pipeline.dataset_dir(config)
  output_dir = config.output_dir
  os.makedirs(output_dir, exist_ok=True)
  sp = config.check_dataset.split
  if sp.enable:
    n_train, n_val = split_dataset(dataset_dir, int(sp.train_percent), int(sp.val_percent),
                                   seed=config.seed)
    print(f"Split dataset successfully ! train: {n_train}, val: {n_val} "
          f"(previous lists kept as train.txt.bak / val.txt.bak)")
  cs, dict_problem = None, None
  dict_path = config.data.dict_path or os.path.join(dataset_dir, "dict.txt")
  try:
    cs = charset_lib.load_dict(dict_path, config.data.use_space_char)
  except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
    dict_problem = f"{dict_path}: {e}"
  result = check(dataset_dir, output_dir, cs, config.data.max_text_length,
                 config.check_dataset.num_samples, dict_problem)
  for w in result["warnings"][:20]:
    print(f"warning: {w}")
  if len(result["warnings"]) > 20:
    print(f"warning: ... {len(result['warnings']) - 20} more in check_dataset_result.json")
  a = result["attributes"]
  print(f"train samples: {a['train_samples']}, val samples: {a['val_samples']}")
  if result["check_pass"]:
    print("Check dataset passed !")
    return 0
  for e in result["errors"]:
    print(e, file=sys.stderr)
  print(f"Check dataset failed: {len(result['errors'])} problem(s); see "
        f"{os.path.join(output_dir, 'check_dataset_result.json')}", file=sys.stderr)
  return 1
