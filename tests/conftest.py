"""Shared test fixtures. `../shared` (beside the repo root) holds data that must not be
copied into the repo; tests that need it skip, saying why, when it is absent."""
from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  if not SHARED.is_dir():
    pytest.skip(f"{SHARED} is absent (a user's fresh clone has no ../shared)")
  return SHARED


def _sub(shared: pathlib.Path, *parts: str) -> pathlib.Path:
  d = shared.joinpath(*parts)
  if not d.is_dir():
    pytest.skip(f"{d} is absent")
  return d


@pytest.fixture(scope="session")
def ic15_dir(shared_dir) -> pathlib.Path:
  return _sub(shared_dir, "data", "ic15_rec")


@pytest.fixture(scope="session")
def paddle_ref_dir(shared_dir) -> pathlib.Path:
  return _sub(shared_dir, "fixtures", "paddle_ref")


@pytest.fixture(scope="session")
def paddle_infer_dir(shared_dir) -> pathlib.Path:
  return _sub(shared_dir, "fixtures", "paddle_infer")


@pytest.fixture(scope="session")
def ocr_images_dir(shared_dir) -> pathlib.Path:
  return _sub(shared_dir, "data", "ocr_images")
