"""Converts a PaddleX label-file dataset into ArrayRecord shards that textrec's pipeline reads.

  python scripts/to_arrayrecord.py --src DIR --dst OUT [--shards 4] [--splits train,val]

Writes OUT/{split}.array_record-NNNNN-of-MMMMM (records: textrec.data.source.encode_record),
OUT/{split}.texts.json (texts in record order, so the pipeline filters without reading images)
and copies DIR/dict.txt. Lines that cannot be parsed are reported as `file:line: reason` and
left out; missing images too. Exit code 1 when anything was left out.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from textrec.data import source  # noqa: E402


def convert_split(src: str, dst: str, split: str, num_shards: int) -> tuple[int, list[str]]:
  """Returns (records written, problems)."""
  from array_record.python import array_record_module as ar
  entries, problems = source.parse_label_file(os.path.join(src, f"{split}.txt"))
  ok = []
  for e in entries:
    path = os.path.join(src, e.path)
    if not os.path.isfile(path):
      problems.append(f"{e.where}: image not found: {path}")
    else:
      ok.append(e)
  num_shards = max(1, min(num_shards, len(ok)))
  writers = [ar.ArrayRecordWriter(
      os.path.join(dst, f"{split}.array_record-{i:05d}-of-{num_shards:05d}"), "group_size:1")
      for i in range(num_shards)]
  # Contiguous blocks per shard, so the global record order is the label file's order.
  per = -(-len(ok) // num_shards)
  for k, e in enumerate(ok):
    with open(os.path.join(src, e.path), "rb") as f:
      writers[k // per].write(source.encode_record(f.read(), e.text, e.where))
  for w in writers:
    w.close()
  with open(os.path.join(dst, f"{split}.texts.json"), "w", encoding="utf-8") as f:
    json.dump([e.text for e in ok], f, ensure_ascii=False)
  return len(ok), problems


def convert(src: str, dst: str, num_shards: int = 4, splits=("train", "val")) -> list[str]:
  os.makedirs(dst, exist_ok=True)
  problems = []
  for split in splits:
    if not os.path.isfile(os.path.join(src, f"{split}.txt")):
      continue
    n, p = convert_split(src, dst, split, num_shards)
    problems += p
    print(f"{split}: {n} records")
  if os.path.isfile(os.path.join(src, "dict.txt")):
    shutil.copyfile(os.path.join(src, "dict.txt"), os.path.join(dst, "dict.txt"))
  return problems


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--src", required=True)
  ap.add_argument("--dst", required=True)
  ap.add_argument("--shards", type=int, default=4)
  ap.add_argument("--splits", default="train,val")
  a = ap.parse_args()
  problems = convert(a.src, a.dst, a.shards, tuple(a.splits.split(",")))
  for p in problems:
    print(p, file=sys.stderr)
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
