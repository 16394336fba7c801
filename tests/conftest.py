"""Shared test fixtures.

The Paddle references (tests/fixtures, written by scripts/make_test_fixtures.py) are in the
repository: tests that compare with them always run. The large datasets are optional and live
in ../shared beside the repository root ($TEXTREC_SHARED overrides the place; e.g.
TEXTREC_SHARED=/nonexistent runs the suite as a fresh clone does): the tests that need them
skip, naming the dataset, when it is absent.
"""
from __future__ import annotations

import pathlib

import pytest

from fixture_files import FIXTURES, build_paddle_infer_dir, build_pdparams_dir, shared_root
from fixture_files import write_ppocr_keys


def _dataset(what: str, *parts: str) -> pathlib.Path:
  d = shared_root().joinpath(*parts)
  if not d.is_dir():
    pytest.skip(f"needs {what} at {d} (optional, not shipped)")
  return d


@pytest.fixture(scope="session")
def ic15_dir() -> pathlib.Path:
  return _dataset("the IC15 dataset", "data", "ic15_rec")


@pytest.fixture(scope="session")
def ocr_images_dir() -> pathlib.Path:
  return _dataset("the OCR images dataset", "data", "ocr_images")


@pytest.fixture(scope="session")
def shared_paddle_ref_dir() -> pathlib.Path:
  """The full paddle_ref fixtures, whose batch holds an IC15 crop as its third row."""
  return _dataset("the full paddle_ref fixtures (their batch holds an IC15 crop)", "fixtures",
                  "paddle_ref")


@pytest.fixture(scope="session")
def paddle_train_dir() -> pathlib.Path:
  """PaddleOCR's trainer run for 5 steps (../shared/fixtures/paddle_train)."""
  return _dataset("PaddleOCR's trainer records", "fixtures", "paddle_train")


@pytest.fixture(scope="session")
def paddle_ref_dir() -> pathlib.Path:
  """Manifests and PaddleOCR's outputs on the synthetic rows x[0:2] (tests/paddle_ref.py)."""
  return FIXTURES / "paddle_ref"


@pytest.fixture(scope="session")
def ppocr_keys(tmp_path_factory) -> pathlib.Path:
  """PaddleOCR's ppocr_keys_v1.txt (6623 characters; IC15's dict.txt is this file)."""
  return write_ppocr_keys(tmp_path_factory.mktemp("dict") / "ppocr_keys_v1.txt")


@pytest.fixture(scope="session")
def pdparams_dir(tmp_path_factory) -> pathlib.Path:
  """The genuine `paddle.save` files of paddle_ref, rebuilt (sha256 checked)."""
  return build_pdparams_dir(tmp_path_factory.mktemp("pdparams"))


@pytest.fixture(scope="session")
def paddle_infer_dir(tmp_path_factory) -> pathlib.Path:
  """PaddleOCR's exported inference directories of the paddle_ref weights, rebuilt."""
  return build_paddle_infer_dir(tmp_path_factory.mktemp("paddle_infer"))
