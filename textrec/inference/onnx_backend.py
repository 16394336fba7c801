"""Runs an exported inference dir (textrec/export/export.py) with onnxruntime: no JAX needed.

`load_inference_dir(path)` reads `inference.yml` and `inference.onnx` and returns
(forward, charset, meta): forward(x f32[B, 3, H, W] NCHW normalised BGR) -> probabilities
np f32[B, T, C], the same contract as the JAX forward; charset the CTC dictionary; meta a
dict with model_name, height, min_width, max_width, pad_widths and the parsed yml ("yml").
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from textrec.charset import Charset

YML_FILE = "inference.yml"


def _get(cfg: Any, path: str, where: str) -> Any:
  node = cfg
  for key in path.split("."):
    if not isinstance(node, dict) or key not in node:
      raise ValueError(f"{where}: missing key {path!r}; re-export the model with "
                       "`--config.mode=export`")
    node = node[key]
  return node


def read_inference_yml(path: str) -> dict:
  """Parses `<dir>/inference.yml` (or the file itself); raises naming the file on errors."""
  import yaml  # pylint: disable=g-import-not-at-top

  yml = os.path.join(path, YML_FILE) if os.path.isdir(path) else path
  if not os.path.isfile(yml):
    raise FileNotFoundError(f"{yml} not found: not an exported inference dir "
                            "(write one with --config.mode=export)")
  try:
    with open(yml, encoding="utf-8") as f:
      cfg = yaml.safe_load(f)
  except yaml.YAMLError as e:
    mark = getattr(e, "problem_mark", None)
    line = f" line {mark.line + 1}" if mark is not None else ""
    raise ValueError(f"{yml}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
  if not isinstance(cfg, dict):
    raise ValueError(f"{yml}: expected a mapping with Global/PreProcess/PostProcess")
  return cfg


def _providers() -> list[str]:
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  have = ort.get_available_providers()
  pref = ["CUDAExecutionProvider", "CPUExecutionProvider"]
  return [p for p in pref if p in have] or have


def load_inference_dir(path: str | os.PathLike, providers: list[str] | None = None,
                       intra_op_threads: int = 0, session_config: dict[str, str] | None = None
                       ) -> tuple[Callable[[np.ndarray], np.ndarray], Charset, dict]:
  """-> (forward x f32[B, 3, H, W] -> probs f32[B, T, C], Charset, meta).

  session_config: onnxruntime session config entries, e.g.
  {"session.intra_op.allow_spinning": "0"} (threads sleep rather than spin between ops: on
  a shared CPU, measured 1.7x faster; the server sets it).
  """
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  path = os.fspath(path)
  cfg = read_inference_yml(path)
  where = os.path.join(path, YML_FILE)
  files = _get(cfg, "Global.files", where)
  if "onnx" not in files:
    raise FileNotFoundError(f"{where}: this export has no ONNX file (files: {sorted(files)}); "
                            "re-export with --config.export.format=onnx or all")
  onnx_path = os.path.join(path, files["onnx"])
  if not os.path.isfile(onnx_path):
    raise FileNotFoundError(f"{onnx_path} (named in {where}) is missing")
  chars = _get(cfg, "PostProcess.character_dict", where)
  height = int(_get(cfg, "PreProcess.height", where))
  in_name = _get(cfg, "Global.input.name", where)
  out_name = _get(cfg, "Global.output.name", where)

  opts = ort.SessionOptions()
  if intra_op_threads:
    opts.intra_op_num_threads = int(intra_op_threads)
  for k, v in (session_config or {}).items():
    opts.add_session_config_entry(k, v)
  sess = ort.InferenceSession(onnx_path, opts, providers=providers or _providers())
  n_cls = sess.get_outputs()[0].shape[-1]
  if not isinstance(n_cls, int):
    n_cls = int(_get(cfg, "Global.output.shape", where)[-1])
  from textrec.weights import paddle_infer  # pylint: disable=g-import-not-at-top

  cs = paddle_infer.yml_charset(chars, n_cls, f"{where} (for {onnx_path})")

  def forward(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != height:
      raise ValueError(f"expected NCHW input [B, 3, {height}, W]; got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    return sess.run([out_name], {in_name: x})[0]

  pre = cfg.get("PreProcess", {})
  meta = dict(model_name=_get(cfg, "Global.model_name", where), height=height,
              min_width=pre.get("min_width"), max_width=pre.get("max_width"),
              pad_widths=tuple(pre.get("pad_widths") or ()), onnx_path=onnx_path, yml=cfg)
  return forward, cs, meta
