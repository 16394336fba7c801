"""Command-line plumbing: flag mistakes as one line, quiet third-party logs.

Exit codes (every mode): 0 done; 1 the run finished but some of its work failed (an input
that could not be read, a dataset check that found problems, a training run stopped early);
2 a usage error (flag, config value, path, missing extra): nothing was run, and one
`error: ...` line on stderr names the problem and the fix. `TEXTREC_DEBUG=1` or
`--verbosity=1` shows the traceback instead.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
import runpy
import sys
from typing import Any, Sequence

from absl import flags
from absl import logging as absl_logging

from textrec.errors import TextrecError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Third-party log lines that say nothing to a user (kept with TEXTREC_DEBUG=1/--verbosity=1).
_NOISE = ("Given directory is read only", "is read only, save will be skipped",
          "is read only, delete will be skipped", "Unable to initialize backend")


# Errors a mode raises for what the user gave (a path, an extra), shown as one line.
USER_ERRORS = (TextrecError, FileNotFoundError, ModuleNotFoundError)
# module -> the extra that installs it
_EXTRA_OF = {"jax2onnx": "export", "tensorflow": "export", "onnx": "pretrained",
             "onnxruntime": "pretrained", "rapidocr_onnxruntime": "pretrained",
             "array_record": "data", "starlette": "serve", "uvicorn": "serve",
             "prometheus_client": "serve"}


def explain(e: Exception) -> str:
  """The one line for a USER_ERRORS exception; a missing module names its extra."""
  if isinstance(e, ModuleNotFoundError) and e.name:
    extra = _EXTRA_OF.get(e.name.split(".")[0])
    if extra:
      return (f"{e.name} is not installed; it comes with the '{extra}' extra: "
              f".venv/bin/pip install -e '.[{extra}]'")
  return str(e)


def debug_requested(argv: Sequence[str] = ()) -> bool:
  """TEXTREC_DEBUG=1, or --verbosity / -v >= 1 on the command line: show tracebacks."""
  if os.environ.get("TEXTREC_DEBUG", "") not in ("", "0"):
    return True
  for i, a in enumerate(argv):
    m = re.fullmatch(r"(?:--verbosity|-v)(?:=(-?\d+))?", a)
    if m:
      v = m.group(1) or (argv[i + 1] if i + 1 < len(argv) else "0")
      if v.lstrip("-").isdigit() and int(v) >= 1:
        return True
  return False


def print_error(msg: str) -> int:
  """Prints `error: msg` (its first line) to stderr; returns EXIT_USAGE."""
  first = (str(msg).strip().splitlines() or [""])[0]
  print(f"error: {first}", file=sys.stderr, flush=True)
  return EXIT_USAGE


# ----------------------------------------------------------------------------- flags
def _config_arg(argv: Sequence[str]) -> str | None:
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.split("=", 1)[1]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _config_files(path: str) -> str:
  d = os.path.dirname(path) or "configs"
  if not os.path.isdir(d):
    d = "configs"
  names = sorted(f for f in os.listdir(d) if f.endswith(".py") and f != "common.py") \
      if os.path.isdir(d) else []
  return ", ".join(os.path.join(d, f) for f in names) or "configs/<model>.py"


def _no_config(path: str) -> UsageError:
  return UsageError(f"--config={path}: no such file; pass one of {_config_files(path)}")


def load_config_file(path: str) -> Any:
  """The config `path`'s get_config(); UsageError naming the file when it is not one."""
  if not os.path.isfile(path):
    raise _no_config(path)
  try:
    get_config = runpy.run_path(path).get("get_config")
  except Exception as e:  # noqa: BLE001  (any error in the user's file)
    raise UsageError(f"--config={path}: cannot load it as a config file "
                     f"({type(e).__name__}: {e})") from e
  if get_config is None:
    raise UsageError(f"--config={path}: has no get_config(); pass one of "
                     f"{_config_files(path)}")
  return get_config()


def _leaf_keys(node: Any, prefix: str = "") -> list[str]:
  """Every value's full dotted key ("predict.input", "seed", ...)."""
  out = []
  for k in node.keys():
    if hasattr(node[k], "keys"):
      out += _leaf_keys(node[k], f"{prefix}{k}.")
    else:
      out.append(f"{prefix}{k}")
  return out


def _bad_override(config: Any, argv: Sequence[str]) -> str | None:
  """The first `--config.a.b=...` naming no config key, explained (with the closest full
  key, e.g. predict.input for predict_input), else None."""
  for a in argv:
    if not a.startswith("--config."):
      continue
    flag, _, value = a.partition("=")
    node, parts = config, flag[len("--config."):].split(".")
    for i, key in enumerate(parts):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if key not in keys:
        where = ".".join(parts[:i]) or "the config"
        if not keys:
          return f"{flag}: {where} is a value, not a section; write --config.{where}=VALUE"
        # A value is set on a leaf: match the whole dotted key against every leaf's, then
        # (a misspelt section with a right key) the one name against this level's.
        close = difflib.get_close_matches(".".join(parts), _leaf_keys(config), n=1)
        if not close:
          close = [".".join(parts[:i] + m + parts[i + 1:])
                   for m in [difflib.get_close_matches(key, keys, n=1)] if m]
        if close:
          fix = f"did you mean --config.{close[0]}{'=' + value if value else ''}?"
        else:
          fix = f"{where} has {', '.join(sorted(keys))}"
        return f"{flag}: no such config key ({fix})"
      node = node[key]
  return None


def _bad_value(config: Any, e: Exception) -> str:
  """One line for an IllegalFlagValueError on `--config.x=value`."""
  m = re.match(r"flag (--config\.[\w.]+)=(.*?): ", str(e))
  if not m:
    return str(e)
  parent, keys = config, m.group(1)[len("--config."):].split(".")
  for key in keys[:-1]:
    parent = parent[key]
  node = parent[keys[-1]]
  if hasattr(node, "keys"):
    return (f"{m.group(1)}: a section, not a value; set its keys as {m.group(1)}.KEY=VALUE "
            f"({', '.join(sorted(node.keys()))})")
  kind = {bool: "True or False", int: "an integer", float: "a number",
          str: "a string"}.get(parent.get_type(keys[-1]), type(node).__name__)
  return f"{m.group(1)}={m.group(2)}: expected {kind} (default: {node!r})"


def explain_flag_error(argv: Sequence[str], e: Exception) -> str:
  """A one-line explanation (with the fix) of a flag-parsing failure."""
  path = _config_arg(argv)
  if path is None:
    return ("--config=configs/<model>.py is required; one of " + _config_files("configs/x"))
  config = load_config_file(path)  # raises the config file's own problem
  bad = _bad_override(config, argv)
  if bad:
    return bad
  if isinstance(e, flags.IllegalFlagValueError):
    return _bad_value(config, e)
  m = re.match(r"Unknown command line flag '(.*)'", str(e))
  if m:
    return (f"--{m.group(1)}: unknown flag; config values are set as --config.SECTION.KEY=VALUE "
            f"(sections: {', '.join(sorted(k for k in config.keys()))})")
  m = re.match(r"Missing value for flag (\S+)", str(e))
  if m:
    return f"{m.group(1)}: missing value; write {m.group(1)}=VALUE"
  return str(e)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (the flags_parser of app.run), mistakes as one line and exit 2."""
  try:
    path = _config_arg(argv[1:])
    if path is not None and not os.path.isfile(path):
      raise _no_config(path)  # ml_collections reports it only when the config is first read
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001  (flag and config-file errors of every kind)
    if debug_requested(argv):
      raise
    try:
      msg = explain_flag_error(argv[1:], e)
    except UsageError as u:
      msg = str(u)
    sys.exit(print_error(msg))


# ----------------------------------------------------------------------------- logs
class _DropNoise(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return not any(n in msg for n in _NOISE)


def quiet_logs(debug: bool) -> None:
  """Third-party INFO chatter off (absl, Orbax, JAX, TensorFlow C++); their warnings still
  show, less a few known harmless ones (`_NOISE`). With `debug` everything shows."""
  if debug:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  absl_logging.set_verbosity(absl_logging.WARNING)
  for handler in logging.root.handlers + [absl_logging.get_absl_handler()]:
    handler.addFilter(_DropNoise())
  for name in ("jax._src.xla_bridge", "jax2onnx", "tensorflow", "h5py"):
    logging.getLogger(name).setLevel(logging.ERROR)
