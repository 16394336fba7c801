"""How many IC15 val crops the comparisons on real crops read.

The default suite reads a sample: the first TEXTREC_IC15_N crops (each test names its default,
a few hundred at most; TEXTREC_IC15_N=0 reads all 2077). The same comparison on all crops is
a separate, `slow`-marked case, which `bash scripts/test.sh` skips unless asked
(`bash scripts/test.sh -m slow`).
"""
from __future__ import annotations

import os
import pathlib

import pytest

ALL = 2077  # ../shared/data/ic15_rec/val.txt


def sample_size(default: int) -> int:
  """TEXTREC_IC15_N, else `default`; 0 means all crops."""
  return int(os.environ.get("TEXTREC_IC15_N", default))


def sizes(default: int) -> list:
  """Parameters for `n`: the sample (default suite) and all crops (marked slow)."""
  return [pytest.param(sample_size(default), id="sample"),
          pytest.param(0, id="all", marks=pytest.mark.slow)]


def val_lines(ic15_dir: pathlib.Path, n: int = 0) -> list[str]:
  """The first `n` lines of val.txt (`images/<file>\\t<text>`); all of them for n = 0."""
  lines = (ic15_dir / "val.txt").read_text(encoding="utf-8").splitlines()
  assert len(lines) == ALL, len(lines)
  return lines[:n] if n else lines
