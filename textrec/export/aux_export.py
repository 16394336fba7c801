"""Export of the OCR pipeline's detector and orientation classifier to ONNX (jax2onnx, as the
recognizers: textrec/export/export.py), each into its own directory with an inference.yml,
so that the whole pipeline runs on onnxruntime (textrec/pipelines/forward.py).

  det: input "x" f32[B, 3, H, W] (NCHW, BGR normalised with ImageNet mean/std; H, W
       multiples of 32, dynamic) -> "maps" f32[B, 1, H, W] (text probability)
  cls: input "x" f32[B, 3, 48, 192] (BGR scaled to [-1, 1]) -> "probs" f32[B, 2] ("0", "180")
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from textrec.errors import UsageError
from textrec.export import converters, export
from textrec.formats import inference_yml
from textrec.pipelines import det_postprocess, forward, orientation, text_detection
from textrec.runtime import settings
from textrec.weights import pipeline_weights

INPUTS = {"det": ("B", 3, "32*h", "32*w"), "cls": ("B", 3, 48, 192)}
OUTPUTS = {"det": "maps", "cls": "probs"}
TOLERANCE = 1e-4


def _nchw_fn(name: str, kind: str, variables: dict[str, Any]):
  fn = forward.model_fn(name, kind)
  if kind == "det":
    return lambda x: fn(variables, jnp.transpose(x, (0, 2, 3, 1)))[:, None]
  return lambda x: fn(variables, jnp.transpose(x, (0, 2, 3, 1)))


def inference_config(name: str, kind: str, source: str) -> dict:
  """inference.yml: PaddleX's fields (Global.model_name, PreProcess.transform_ops,
  PostProcess) and the ONNX's input / output."""
  io = {"input": {"name": "x", "dtype": "float32", "layout": "NCHW",
                  "shape": [-1, 3, -1, -1] if kind == "det" else [-1, 3, 48, 192]},
        "output": {"name": OUTPUTS[kind], "dtype": "float32"}}
  cfg: dict[str, Any] = {"Global": {"model_name": name, "source": source, "producer": "textrec",
                                    "files": {"onnx": inference_yml.ONNX_FILE}, **io}}
  if kind == "det":
    db = det_postprocess.DBParams()
    cfg["PreProcess"] = {"transform_ops": [
        {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
        {"DetResizeForTest": {"limit_side_len": 960, "limit_type": "max"}},
        {"NormalizeImage": {"mean": list(text_detection.IMAGENET_MEAN),
                            "std": list(text_detection.IMAGENET_STD), "scale": 1.0 / 255.0,
                            "order": "hwc"}},
        {"ToCHWImage": None}]}
    cfg["PostProcess"] = {"name": "DBPostProcess", "thresh": db.thresh,
                          "box_thresh": db.box_thresh, "max_candidates": db.max_candidates,
                          "unclip_ratio": db.unclip_ratio}
  else:
    cfg["PreProcess"] = {"transform_ops": [
        {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
        {"ClsResizeImg": {"image_shape": [3, orientation.HEIGHT, orientation.WIDTH]}}]}
    cfg["PostProcess"] = {"name": "ClsPostProcess", "label_list": list(orientation.LABELS)}
  return cfg


def export_aux(name: str, kind: str, variables: dict[str, Any], out_dir: str, opset: int = 17,
               source: str = "", check: bool = True) -> dict[str, str]:
  """Writes out_dir/inference.onnx and inference.yml; checks the ONNX against JAX on random
  inputs (max |Δ| <= 1e-4). Returns {kind: path}."""
  import jax2onnx  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  fn = _nchw_fn(name, kind, variables)
  t0 = time.perf_counter()
  with converters.quiet_serde(), converters._lax_level_plugins(), settings.conv_impl("xla"):  # pylint: disable=protected-access
    model = jax2onnx.to_onnx(fn, inputs=[INPUTS[kind]], opset=opset, model_name=name,
                             input_names=["x"], output_names=[OUTPUTS[kind]])
  onnx.helper.set_model_props(model, {"model_name": name, "producer": "textrec"})
  onnx.checker.check_model(model)
  onnx.save(model, os.path.join(out_dir, inference_yml.ONNX_FILE))
  print(f"export: {name} ONNX (opset {opset}) in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr)
  inference_yml.write(os.path.join(out_dir, inference_yml.YML_FILE),
                      inference_config(name, kind, source))
  if check:
    ort_fn = forward.OnnxForward(os.path.join(out_dir, inference_yml.ONNX_FILE), kind)
    rng = np.random.default_rng(0)
    shapes = [(2, 96, 160, 3), (1, 64, 224, 3)] if kind == "det" else [(3, 48, 192, 3)]
    jfn = jax.jit(forward.model_fn(name, kind))
    err = 0.0
    for s in shapes:
      x = rng.normal(0, 1, s).astype(np.float32)
      err = max(err, float(np.abs(ort_fn(x) - np.asarray(jfn(variables, x))).max()))
    if err > TOLERANCE:
      raise RuntimeError(f"export: {name} ONNX differs from JAX by {err:.2e} > {TOLERANCE:.0e}")
    print(f"export: {name} ONNX vs JAX on random inputs: max |Δ| = {err:.2e}", file=sys.stderr)
  return {"onnx": os.path.join(out_dir, inference_yml.ONNX_FILE),
          "yml": os.path.join(out_dir, inference_yml.YML_FILE)}


def run_ocr(config) -> int:
  """`--config=configs/ocr.py --config.mode=export`: the recognizer (as the recognizers'
  export), the detector and the orientation classifier, each into
  <output_dir>/inference/<model name>/ (ONNX). Exit code 0 (bad input raises textrec.errors'
  errors, which the CLI shows as one line)."""
  o, e = config.ocr, config.export
  if e.format != "onnx":
    raise UsageError(f"the OCR pipeline exports ONNX only; got export.format={e.format}")
  root = os.path.join(config.output_dir, export.INFERENCE_DIR)
  module, variables, cs, source = export.load_weights(
      config.model.name, e.weight_path or config.predict.model_dir, config.data.dict_path,
      int(config.data.height), prefix=config.model.get("weights_prefix") or None)
  aux_vars = {kind: pipeline_weights.load_aux(name, kind, model_dir or None)
              for kind, name, model_dir in (("det", o.det_model, o.det_model_dir),
                                            ("cls", o.cls_model, o.cls_model_dir))}
  paths = export.export(config.model.name, module, variables, cs,
                        os.path.join(root, config.model.name), "onnx", int(e.opset),
                        int(config.data.height), source)
  for kind, name in (("det", o.det_model), ("cls", o.cls_model)):
    v, src = aux_vars[kind]
    paths.update({f"{kind} {k}": p for k, p in
                  export_aux(name, kind, v, os.path.join(root, name), int(e.opset), src).items()})
  for kind, p in paths.items():
    print(f"export: {kind:12s} {p}")
  print(f"export: run it without JAX: --config.predict.model_dir={root}/{config.model.name} "
        f"--config.ocr.det_model_dir={root}/{o.det_model} "
        f"--config.ocr.cls_model_dir={root}/{o.cls_model}", file=sys.stderr)
  return 0
