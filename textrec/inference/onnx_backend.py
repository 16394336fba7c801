"""Runs an exported inference dir (textrec/export/export.py) with onnxruntime or OpenVINO
(textrec.inference.runtimes): no JAX needed.

`load_inference_dir(path)` reads `inference.yml` and `inference.onnx` and returns
(forward, charset, meta): forward(x f32[B, 3, H, W] NCHW normalised BGR) -> probabilities
np f32[B, T, C], the same contract as the JAX forward; charset the CTC dictionary; meta a
dict with model_name, height, min_width, max_width, pad_widths, onnx_path, source (the yml's
Global.source: where the exported weights came from) and the parsed yml ("yml"). The forward
has `backend` and `precision` attributes.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from textrec import files
from textrec.charset import Charset
from textrec.formats import inference_yml, official_files
from textrec.inference import preprocess, runtimes
from textrec.weights import onnx_import

session = runtimes.session  # an onnxruntime session (textrec.inference.runtimes)


class _Forward:
  """x f32[B, 3, height, W] -> probs f32[B, T, C] through a runtimes.runner."""

  def __init__(self, run, height: int):
    self.run, self.height = run, height
    self.backend, self.precision = run.backend, run.precision

  def __call__(self, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != self.height:
      raise ValueError(f"expected NCHW input [B, 3, {self.height}, W]; got shape {x.shape}")
    return self.run(x)


def load_inference_dir(path: str | os.PathLike, providers: list[str] | None = None,
                       intra_op_threads: int = 0, session_config: dict[str, str] | None = None,
                       backend: str = "onnxruntime", precision: str = "f32"
                       ) -> tuple[Callable[[np.ndarray], np.ndarray], Charset, dict]:
  """-> (forward x f32[B, 3, H, W] -> probs f32[B, T, C], Charset, meta).

  backend: "onnxruntime" | "openvino" (runtimes.ONNX_RUNTIMES), at `precision`.
  session_config: onnxruntime session config entries, e.g.
  {"session.intra_op.allow_spinning": "0"} (threads sleep rather than spin between ops,
  which the server sets so its event loop keeps a core).
  """
  path = os.fspath(path)
  cfg = inference_yml.read(path)
  where = inference_yml.path_of(path)
  model_files = inference_yml.get(cfg, "Global.files", where)
  if "onnx" not in model_files:
    raise FileNotFoundError(f"{where}: this export has no ONNX file (files: "
                            f"{sorted(model_files)}); re-export with --config.export.format=onnx "
                            "or all")
  onnx_path = os.path.join(path, model_files["onnx"])
  if not os.path.isfile(onnx_path):
    raise FileNotFoundError(f"{onnx_path} (named in {where}) is missing")
  chars = inference_yml.get(cfg, "PostProcess.character_dict", where)
  height = int(inference_yml.get(cfg, "PreProcess.height", where))
  in_name = inference_yml.get(cfg, "Global.input.name", where)
  out_name = inference_yml.get(cfg, "Global.output.name", where)

  del in_name, out_name  # the graph's one input and first output
  run = runtimes.runner(onnx_path, backend, precision, session_config, providers,
                        intra_op_threads)
  n_cls = run.output_shape[-1]
  if not isinstance(n_cls, int):
    n_cls = int(inference_yml.get(cfg, "Global.output.shape", where)[-1])
  cs = inference_yml.charset_of(chars, n_cls, f"{where} (for {onnx_path})")
  forward = _Forward(run, height)

  pre = cfg.get("PreProcess", {})
  meta = dict(model_name=inference_yml.get(cfg, "Global.model_name", where), height=height,
              min_width=pre.get("min_width"), max_width=pre.get("max_width"),
              pad_widths=tuple(pre.get("pad_widths") or ()), onnx_path=onnx_path,
              source=str(cfg.get("Global", {}).get("source") or ""), yml=cfg)
  return forward, cs, meta


def inference_config(name: str, cs: Charset, model_files: dict[str, str],
                     height: int = preprocess.HEIGHT, source: str = "",
                     input_name: str = "x", output_name: str = "probs") -> dict:
  """inference.yml of a recognizer export (textrec.formats.inference_yml.rec_config) with
  this version's preprocessing."""
  return inference_yml.rec_config(
      name, cs, model_files, height=height, min_width=preprocess.MIN_WIDTH,
      max_width=preprocess.MAX_WIDTH, pad_widths=preprocess.BUCKETS, input_name=input_name,
      output_name=output_name, source=source)


def official_dir(model_name: str = "PP-OCRv4_mobile_rec", out_dir: str | None = None) -> str:
  """The official ONNX as an exported inference dir (inference.yml + a link to the file), so
  `load_inference_dir` runs it without an export; written once, default
  `<official cache dir>-onnx`."""
  import onnx  # pylint: disable=g-import-not-at-top

  official_files.check_shipped(model_name)
  onnx_path = official_files.onnx_path(model_name)
  out_dir = out_dir or os.path.join(files.cache_root(), "official", model_name + "-onnx")
  if os.path.isfile(os.path.join(out_dir, inference_yml.YML_FILE)):
    return out_dir
  m = onnx.load(onnx_path, load_external_data=False)
  cs = onnx_import.official_charset(m, model_name, onnx_path)
  cfg = inference_config(model_name, cs, {"onnx": "inference.onnx"},
                         source=f"official:{onnx_path}", input_name=m.graph.input[0].name,
                         output_name=m.graph.output[0].name)
  with files.atomic_dir(out_dir, complete=inference_yml.YML_FILE) as tmp:
    os.symlink(onnx_path, os.path.join(tmp, inference_yml.ONNX_FILE))
    inference_yml.write(os.path.join(tmp, inference_yml.YML_FILE), cfg)
  return out_dir
