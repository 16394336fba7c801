"""`--config.mode=predict` over files, one loop for the recognizer and the OCR pipeline:
the inputs the config names, a printed line (or block) per result, images / JSON saved, a
summary line on stderr, and the exit code (0; 1 when an input failed or none was read)."""
from __future__ import annotations

import collections
import dataclasses
import os
import sys
import time
from typing import Any, Callable, Iterable

from textrec.errors import UsageError
from textrec.inference import inputs


def input_paths(value: str) -> list[str]:
  """`predict.input` as paths: one path, or a comma-separated list of paths (`~` expanded)."""
  value = os.path.expanduser(value)
  if os.path.exists(value) or "," not in value:
    return [value]
  return [os.path.expanduser(v.strip()) for v in value.split(",") if v.strip()]


def output_dir(config: Any) -> str:
  """Where predict writes its images / JSON: `predict.output_dir`, else
  `<output_dir>/predict` (apart from a training run's files in `output_dir`)."""
  p = config.predict
  return os.path.expanduser(p.get("output_dir") or os.path.join(config.output_dir, "predict"))


def check(p: Any) -> None:
  """UsageError for a predict section that cannot run (no input, batch size < 1)."""
  if not p.input:
    raise UsageError("predict.input=PATH (image, directory or list) is required")
  if int(p.batch_size) < 1:
    raise UsageError(f"predict.batch_size must be >= 1, got {p.batch_size}")


@dataclasses.dataclass(frozen=True)
class Report:
  """How one kind of result is shown and summed up.

  show: prints a result; count: what the summary adds up per result (texts read empty, lines
  found); summary: (results read, their count) -> the summary's head, e.g. "3 recognised
  (1 with no text read)"; keep_failed: failed results are printed and saved (JSON) too."""
  show: Callable[[Any], None]
  count: Callable[[Any], int]
  summary: Callable[[int, int], str]
  keep_failed: bool = False


def run(results: Iterable[Any], p: Any, out_dir: str, report: Report) -> int:
  """Goes through `results` (each with .error, .input_path, .save_to_img, .save_to_json),
  prints and saves them as `p` (config.predict) says; returns the exit code."""
  os.makedirs(out_dir, exist_ok=True)
  n_ok, counted, failed, skipped = 0, 0, collections.Counter(), collections.Counter()
  t0 = time.perf_counter()
  for res in results:
    if res.error is not None:
      inputs.tally_error(res.error, res.input_path, failed, skipped, "predict")
      if res.error.endswith(inputs.SKIPPED) or not report.keep_failed:
        continue
    else:
      n_ok += 1
      counted += report.count(res)
      if p.save_img:
        res.save_to_img(out_dir)
    report.show(res)
    if p.save_json:
      res.save_to_json(out_dir)
  summary = report.summary(n_ok, counted)
  summary += f", {sum(failed.values())} failed" + (
      f" ({inputs.by_reason(failed)})" if failed else "")
  if skipped:
    summary += f", {sum(skipped.values())} skipped ({inputs.by_reason(skipped)})"
  print(f"predict: {summary} in {time.perf_counter() - t0:.1f} s; results in {out_dir}",
        file=sys.stderr)
  return 1 if failed or not n_ok else 0
