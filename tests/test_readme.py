"""The README as a new user reads it: its commands name real config keys and files, it says
how to install (from the clone) and how to run the installed textrec, and where the keys
that set a training's length are listed."""
from __future__ import annotations

import pathlib
import re
import runpy

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PLACEHOLDERS = {"KEY", "SECTION"}


def _keys(config, prefix: str = "") -> set[str]:
  out = set()
  for k in config.keys():
    v = config[k]
    full = f"{prefix}{k}"
    out.add(full)
    if hasattr(v, "keys"):
      out |= _keys(v, full + ".")
  return out


@pytest.fixture(scope="module")
def known_keys() -> set[str]:
  keys = set()
  for f in sorted((REPO / "configs").glob("*.py")):
    get = runpy.run_path(str(f)).get("get_config")
    if get:
      keys |= _keys(get())
  return keys


def test_every_config_key_in_the_readme_exists(known_keys):
  named = set(re.findall(r"--config\.([A-Za-z_][\w.]*[\w])", README))
  named |= {m for m in re.findall(r"`((?:train|optim|data|predict|evaluate|export|serve|ocr|"
                                  r"runtime|check_dataset|model)\.[a-z_.]+[a-z_])", README)}
  files = (".log", ".json", ".jsonl", ".png", ".txt", ".yml", ".onnx", ".py")
  unknown = sorted(k for k in named if k not in known_keys and not k.endswith(files)
                   and not any(p in k.split(".") for p in PLACEHOLDERS))
  assert not unknown, f"README names config keys no config has: {unknown}"


def test_every_config_file_and_script_in_the_readme_exists():
  paths = set(re.findall(r"((?:configs|scripts|experiments)/[\w./-]+\.(?:py|sh|md))", README))
  missing = sorted(p for p in paths if not (REPO / p).exists())
  assert not missing, f"README names files that are not in the repository: {missing}"


def test_install_is_from_the_clone_and_says_how_to_run_it():
  assert not re.search(r"pip install\s+['\"]?textrec", README), \
      "textrec is not on a package index: install it from the clone"
  assert "source .venv/bin/activate" in README and ".venv/bin/python" in README


def test_training_length_and_where_every_key_is_listed():
  for key in ("train.epochs", "train.steps", "train.log_every"):
    assert key in README, f"README does not say how to set {key}"
  assert "configs/common.py" in README
