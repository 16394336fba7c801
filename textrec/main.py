"""Entry point: `python -m textrec.main --config=configs/v4_mobile.py [--config.key=value ...]`.

Dispatches on `config.mode`: train | evaluate | predict | check_dataset | export | serve.
On Linux it first re-executes itself with transparent huge pages for malloc
(`textrec.runtime.hugepages`; --config.runtime.hugepages=False opts out).
Exit codes: 0 done, 1 some of the work failed, 2 a usage error, printed as one `error: ...`
line (`textrec.cli`; TEXTREC_DEBUG=1 or --verbosity=1 shows the traceback instead).
"""
from __future__ import annotations

import importlib
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from textrec import checks
from textrec import cli
from textrec.errors import UsageError
from textrec.pipelines import ocr_versions
from textrec.runtime import compile_cache, hugepages

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)

# mode -> "module:function"; each function takes the config and returns an exit code.
MODES = {
    "train": "textrec.training.train:run",
    "evaluate": "textrec.training.evaluate:run",
    "predict": "textrec.inference.predictor:run",
    "check_dataset": "textrec.data.dataset_tools:run",
    "export": "textrec.export.export:run",
    "serve": "textrec.serving.server:run",
}
# the same modes for configs/ocr.py (an `ocr` section): the OCR pipeline on whole images.
OCR_MODES = {
    "predict": "textrec.pipelines.predict:run",
    "export": "textrec.export.aux_export:run_ocr",
}


def main(argv) -> int:
  del argv
  debug = cli.debug_requested(sys.argv) or flags.FLAGS.verbosity >= 1
  cli.quiet_logs(debug)
  try:
    return run(_CONFIG.value)
  except cli.USER_ERRORS as e:
    if debug:
      raise
    return cli.print_error(cli.explain(e))


def run(config) -> int:
  """Checks `config` (raising textrec.errors.UsageError), then runs its mode; returns the exit code."""
  if config is None:
    raise UsageError("--config=configs/<model>.py is required")
  if config.mode not in MODES:
    raise UsageError(f"--config.mode={config.mode}: unknown mode; one of "
                         f"{', '.join(MODES)}")
  if "ocr" in config and not config.model.name:  # configs/ocr.py: the ocr_version's recognizer
    config.model.name = ocr_versions.get(config.ocr.ocr_version).rec_model
  checks.check_config(config)
  if config.mode in ("train", "evaluate"):  # predict enables it itself
    compile_cache.enable()  # on disk: a second run skips most compiles
  target = MODES[config.mode]
  if "ocr" in config and config.mode in OCR_MODES:  # configs/ocr.py: whole images
    target = OCR_MODES[config.mode]
  module, fn = target.split(":")
  return int(getattr(importlib.import_module(module), fn)(config) or 0)


if __name__ == "__main__":
  hugepages.reexec_with_hugepages()
  app.run(main, flags_parser=cli.parse_flags)
