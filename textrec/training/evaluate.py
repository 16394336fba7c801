"""Evaluate mode: RecMetric (acc, norm_edit_dis) of a recogniser on a labelled split.

  python -m textrec.main --config=configs/v4_mobile.py --config.mode=evaluate \
      --config.dataset_dir=DIR [--config.evaluate.weight_path=CKPT] [--config.evaluate.is_filter=True]

Without `weight_path` the official weights are evaluated. Images go through exactly the
predict path (`TextRecognizer.recognize`: each crop resized/normalised by
`textrec.inference.preprocess.resize_norm` and padded to its own bucket width, greedy CTC decoding), so
evaluate and predict never disagree (`evaluate.rotate_tall` works as `predict.rotate_tall`).
Writes OUT/evaluate_result.json with the metric named by `evaluate.is_filter` as
`acc`/`norm_edit_dis`, plus both the case-sensitive and the filtered ([0-9a-z]) metrics.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import jax
import numpy as np

from textrec.charset import Charset
from textrec.data import demo, pipeline
from textrec.data import source as source_lib
from textrec.errors import InputError
from textrec.inference import jax_backend, predictor
from textrec.models import registry, zoo
from textrec.training import metrics as metrics_lib
from textrec.weights import loader


def read_split(dataset_dir: str, split: str):
  """The split's random-access source (label file or ArrayRecord shards); raises naming bad
  label-file lines."""
  src, problems = source_lib.open_split(dataset_dir, split)
  if problems:
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    raise InputError("bad label file:\n  " + "\n  ".join(problems[:10]) + more)
  return src


def load_records(src, start: int, stop: int) -> tuple[list[np.ndarray], list[str]]:
  """Records [start, stop) of a `read_split` source -> (BGR uint8 crops, label texts)."""
  images, texts = [], []
  for i in range(start, stop):
    rec = src[i]
    images.append(pipeline.decode_image(rec["image"], rec["where"]))
    texts.append(rec["text"])
  return images, texts


def evaluate_recognizer(recognize: Callable[[list[np.ndarray]], list[tuple[str, float]]],
                        items, chunk: int = 256,
                        log: Callable[[str], None] | None = None) -> dict[str, Any]:
  """`recognize(list of BGR crops) -> [(text, score)]` over the records of `items` (a source
  from `read_split`).

  Returns {"case_sensitive": {...}, "filtered": {...}} RecMetric results (spaces ignored).
  """
  exact, filt = metrics_lib.RecMetric(False), metrics_lib.RecMetric(True)
  t0 = time.time()
  for start in range(0, len(items), chunk):
    images, targets = load_records(items, start, min(start + chunk, len(items)))
    preds = [t for t, _ in recognize(images)]
    exact.update(preds, targets)
    filt.update(preds, targets)
    if log:
      done = start + len(images)
      log(f"eval {done}/{len(items)}  acc {exact.result()['acc']:.4f}  "
          f"{done / max(time.time() - t0, 1e-9):.1f} img/s")
  return {"case_sensitive": exact.result(), "filtered": filt.result()}


def inference_form(model_name: str, num_classes: int, variables: dict, deploy: bool,
                   dtype: str = "float32") -> tuple[Any, dict]:
  """(module, variables) for evaluation: the fused deploy form when the model has one (the
  same function as the training form in eval mode, with fewer ops), else as given."""
  build = registry.get_model(model_name)
  if not deploy:
    try:
      module = build(num_classes=num_classes, deploy=True, dtype=dtype)
    except ValueError:  # no deploy form (nothing to fuse)
      return build(num_classes=num_classes, deploy=False, dtype=dtype), variables
    return module, zoo.to_deploy(model_name, variables)
  return build(num_classes=num_classes, deploy=True, dtype=dtype), variables


def make_recognizer(model, variables: dict, charset: Charset, batch_size: int = 32,
                    rotate_tall: float = 0.0):
  """A predict-path recogniser (textrec.inference.predictor) over in-memory flax variables."""
  fwd = jax_backend.FlaxForward(model, variables)
  return predictor.TextRecognizer(getattr(model, "name", None) or "model", fwd, charset,
                                  batch_size=batch_size, rotate_tall=rotate_tall)


def evaluate_variables(model, variables: dict, charset: Charset, dataset_dir: str,
                       split: str = "val", batch_size: int = 32,
                       log: Callable[[str], None] | None = None) -> dict[str, Any]:
  rec = make_recognizer(model, variables, charset, batch_size)
  items = read_split(dataset_dir, split)
  return evaluate_recognizer(lambda imgs: rec.recognize(imgs, batch_size), items, log=log)


class Evaluator:
  """Evaluates variables on `config.evaluate`'s split through the predict path, as evaluate
  mode does (`evaluate.rotate_tall` included). The first call builds the recogniser; later
  calls only swap its variables, so its compiled programs are kept."""

  def __init__(self, config, charset: Charset, deploy: bool, dataset_dir: str):
    self.config, self.charset, self.deploy, self.dataset_dir = config, charset, deploy, dataset_dir
    self.rec, self.items = None, None

  def __call__(self, variables: dict) -> dict[str, Any]:
    """-> {"acc", "norm_edit_dis", "num"} of the configured metric, plus "case_sensitive"
    and "filtered" (both metrics)."""
    cfg = self.config.evaluate
    module, host = inference_form(self.config.model.name, self.charset.num_classes,
                                  jax.device_get(variables), self.deploy)
    if self.rec is None:
      self.rec = make_recognizer(module, host, self.charset, cfg.batch_size,
                                 float(cfg.rotate_tall))
      self.items = read_split(self.dataset_dir, cfg.split)
    else:
      self.rec.probs_fn.variables = jax.device_put(host)
    res = evaluate_recognizer(lambda imgs: self.rec.recognize(imgs, cfg.batch_size), self.items)
    main = res["filtered" if cfg.is_filter else "case_sensitive"]
    return dict(acc=main["acc"], norm_edit_dis=main["norm_edit_dis"], num=main["num"],
                case_sensitive=res["case_sensitive"], filtered=res["filtered"])


def _load(config) -> tuple[Any, dict, Charset, str]:
  """-> (module, variables, charset, description) for config.evaluate.weight_path."""
  w = loader.load_weights(config.model.name, config.evaluate.weight_path,
                          config.data.dict_path or None,
                          prefix=config.model.get("weights_prefix") or None)
  module, variables = inference_form(config.model.name, w.num_classes, w.variables, w.deploy)
  return module, variables, w.charset, w.source


def run(config) -> int:
  """--config.mode=evaluate: writes OUT/evaluate_result.json; returns the exit code."""
  dataset_dir = config.dataset_dir or demo.demo_dataset_dir()
  out_dir = config.output_dir
  os.makedirs(out_dir, exist_ok=True)
  module, variables, cs, desc = _load(config)
  items = read_split(dataset_dir, config.evaluate.split)
  print(f"evaluating {desc} on {dataset_dir} [{config.evaluate.split}]: {len(items)} samples")
  bs = config.evaluate.batch_size
  rec = make_recognizer(module, variables, cs, bs, float(config.evaluate.rotate_tall))
  recognize = lambda imgs: rec.recognize(imgs, bs)
  t0 = time.time()
  res = evaluate_recognizer(recognize, items, log=print)
  main = res["filtered" if config.evaluate.is_filter else "case_sensitive"]
  result = dict(done_flag=True, acc=main["acc"], norm_edit_dis=main["norm_edit_dis"],
                is_filter=bool(config.evaluate.is_filter), num_samples=main["num"],
                rotate_tall=float(config.evaluate.rotate_tall),
                case_sensitive=res["case_sensitive"], filtered=res["filtered"],
                weight_path=config.evaluate.weight_path or "official", model=config.model.name,
                dataset_dir=os.path.abspath(dataset_dir), split=config.evaluate.split,
                seconds=round(time.time() - t0, 1))
  path = os.path.join(out_dir, "evaluate_result.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, ensure_ascii=False)
  os.replace(path + ".tmp", path)
  print(f"acc {result['acc']:.4f}  norm_edit_dis {result['norm_edit_dis']:.4f}  "
        f"(filtered: acc {res['filtered']['acc']:.4f}, "
        f"norm_edit_dis {res['filtered']['norm_edit_dis']:.4f})  -> {path}")
  return 0
