"""Random-access sources of (image bytes, text) records: PaddleX label files or ArrayRecord shards.

Label-file layout (PaddleX/PaddleOCR): `DIR/images/...`, `DIR/{train,val}.txt` with one
`relative/path<TAB>text` per line (UTF-8), optional `DIR/dict.txt`.
ArrayRecord layout (scripts/to_arrayrecord.py): `DIR/{split}.array_record-NNNNN-of-MMMMM`
shards whose records are `encode_record(...)` bytes, `DIR/{split}.texts.json` (the texts, in
record order) and `DIR/dict.txt`.

Every record is a dict: image (bytes), text (str), index (int), where ("file:line").
Problems are reported as `file:line: reason`.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import struct
from typing import Any, Sequence

import grain

_MAGIC = b"TRR1"


class DataError(ValueError):
  """A bad record; the message starts with `file:line:`."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One parsed label-file line."""
  path: str      # image path relative to the dataset dir, as written in the label file
  text: str
  where: str     # "label_file:line"


def parse_label_file(label_file: str, check_tabs: bool = True
                     ) -> tuple[list[Entry], list[str]]:
  """Reads a PaddleX label file. Returns (entries, problems as `file:line: reason`).

  Blank lines are skipped. A line must be `path<TAB>text`; the text may be empty here (the
  encoders decide what to drop), but a missing tab or a non-UTF-8 line is a problem.
  """
  if not os.path.isfile(label_file):
    raise FileNotFoundError(f"label file not found: {label_file}")
  entries, problems = [], []
  with open(label_file, "rb") as f:
    for lineno, raw in enumerate(f, 1):
      where = f"{label_file}:{lineno}"
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        problems.append(f"{where}: line is not valid UTF-8 ({e.reason} at byte {e.start})")
        continue
      line = line.rstrip("\n").rstrip("\r")
      if line.strip() == "":
        continue
      parts = line.split("\t")
      if len(parts) < 2:
        problems.append(f"{where}: no tab between image path and label")
        continue
      if check_tabs and len(parts) > 2:
        problems.append(f"{where}: {len(parts) - 1} tabs; expected one (`path<TAB>label`)")
        continue
      if parts[0].strip() == "":
        problems.append(f"{where}: empty image path")
        continue
      if "\x00" in parts[0]:
        problems.append(f"{where}: image path contains a NUL character")
        continue
      entries.append(Entry(parts[0], parts[1], where))
  return entries, problems


class LabelFileSource(grain.sources.RandomAccessDataSource):
  """grain random-access source over a PaddleX label file (image files read lazily)."""

  def __init__(self, dataset_dir: str, entries: Sequence[Entry]):
    self.dataset_dir = dataset_dir
    self.entries = list(entries)

  def __len__(self) -> int:
    return len(self.entries)

  def __getitem__(self, index: int) -> dict[str, Any]:
    e = self.entries[index]
    path = os.path.join(self.dataset_dir, e.path)
    try:
      with open(path, "rb") as f:
        data = f.read()
    except FileNotFoundError:
      raise DataError(f"{e.where}: image not found: {path}") from None
    except (OSError, ValueError) as err:
      raise DataError(f"{e.where}: cannot read image {path!r}: {err}") from None
    return dict(image=data, text=e.text, index=int(index), where=e.where)

  def texts(self) -> list[str]:
    return [e.text for e in self.entries]

  def where(self, index: int) -> str:
    return self.entries[index].where

  def __repr__(self) -> str:
    return f"LabelFileSource({self.dataset_dir!r}, {len(self)} entries)"


def encode_record(image: bytes, text: str, where: str) -> bytes:
  """(image bytes, text, origin) -> one ArrayRecord record."""
  meta = json.dumps(dict(text=text, where=where), ensure_ascii=False).encode("utf-8")
  return _MAGIC + struct.pack("<I", len(meta)) + meta + image


def decode_record(record: bytes, where: str = "record") -> dict[str, Any]:
  """Inverse of `encode_record`: dict(image, text, where)."""
  if len(record) < 8 or record[:4] != _MAGIC:
    raise DataError(f"{where}: not a textrec record (bad magic)")
  (n,) = struct.unpack("<I", record[4:8])
  if 8 + n > len(record):
    raise DataError(f"{where}: truncated record")
  try:
    meta = json.loads(record[8:8 + n].decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DataError(f"{where}: bad record metadata: {e}") from None
  return dict(image=record[8 + n:], text=meta["text"], where=meta.get("where", where))


class ArrayRecordSource(grain.sources.RandomAccessDataSource):
  """grain random-access source over ArrayRecord shards written by scripts/to_arrayrecord.py."""

  def __init__(self, paths: Sequence[str], texts_file: str | None = None):
    if not paths:
      raise FileNotFoundError("no ArrayRecord shards given")
    self.paths = list(paths)
    self._source = grain.sources.ArrayRecordDataSource(self.paths)
    self._texts = None
    if texts_file and os.path.isfile(texts_file):
      with open(texts_file, encoding="utf-8") as f:
        texts = json.load(f)
      if len(texts) != len(self._source):
        raise DataError(f"{texts_file}: {len(texts)} texts for {len(self._source)} records")
      self._texts = texts

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    rec = decode_record(self._source[index], self.where(index))
    rec["index"] = int(index)
    return rec

  def texts(self) -> list[str]:
    """All texts (from the `.texts.json` sidecar, else read from every record once)."""
    if self._texts is None:
      self._texts = [self[i]["text"] for i in range(len(self))]
    return self._texts

  def where(self, index: int) -> str:
    return f"{os.path.dirname(self.paths[0])}[record {index}]"

  def __repr__(self) -> str:
    return f"ArrayRecordSource({len(self.paths)} shards, {len(self)} records)"


def array_record_shards(dataset_dir: str, split: str) -> list[str]:
  return sorted(glob.glob(os.path.join(dataset_dir, f"{split}.array_record-*")))


def texts_file(dataset_dir: str, split: str) -> str:
  """Sidecar list of the split's texts (lets the pipeline filter without reading images)."""
  return os.path.join(dataset_dir, f"{split}.texts.json")


def open_split(dataset_dir: str, split: str
               ) -> tuple[LabelFileSource | ArrayRecordSource, list[str]]:
  """`DIR/{split}.txt` (label file) or `DIR/{split}.array_record*` -> (source, problems)."""
  label_file = os.path.join(dataset_dir, f"{split}.txt")
  if os.path.isfile(label_file):
    entries, problems = parse_label_file(label_file)
    return LabelFileSource(dataset_dir, entries), problems
  shards = array_record_shards(dataset_dir, split)
  if shards:
    return ArrayRecordSource(shards, texts_file(dataset_dir, split)), []
  raise FileNotFoundError(
      f"{dataset_dir}: neither {split}.txt nor {split}.array_record* shards found")
