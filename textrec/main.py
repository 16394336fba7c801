"""Entry point: `python -m textrec.main --config=configs/v4_mobile.py [--config.key=value ...]`.

Dispatches on `config.mode`: train | evaluate | predict | check_dataset | export | serve.
On Linux it first re-executes itself with transparent huge pages for malloc
(`textrec.hugepages`: XLA:CPU train steps 1.1-1.3x faster; TEXTREC_HUGEPAGES=0 opts out).
"""
from __future__ import annotations

import importlib
import sys

from absl import app
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)

# mode -> "module:function"; each function takes the config and returns an exit code.
MODES = {
    "train": "textrec.train:run",
    "evaluate": "textrec.evaluate:run",
    "predict": "textrec.predictor:run",
    "check_dataset": "textrec.dataset_tools:run",
    "export": "textrec.export:run",
    "serve": "textrec.serving.server:run",
}


def main(argv) -> int:
  del argv
  config = _CONFIG.value
  if config is None:
    print("--config=configs/<model>.py is required", file=sys.stderr)
    return 2
  if config.mode not in MODES:
    print(f"unknown mode {config.mode!r}; one of {sorted(MODES)}", file=sys.stderr)
    return 2
  module, fn = MODES[config.mode].split(":")
  return int(getattr(importlib.import_module(module), fn)(config) or 0)


if __name__ == "__main__":
  from textrec import hugepages  # pylint: disable=g-import-not-at-top

  hugepages.reexec_with_hugepages()
  app.run(main)
