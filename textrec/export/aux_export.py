"""Export of the OCR pipeline's detectors and orientation classifiers to ONNX (jax2onnx, as the
recognizers: textrec/export/export.py), each into its own directory with an inference.yml,
so that the whole pipeline runs on onnxruntime (textrec/pipelines/forward.py).

  det: input "x" f32[B, 3, H, W] (NCHW, BGR normalised with ImageNet mean/std; H, W
       multiples of 32, dynamic) -> "maps" f32[B, 1, H, W] (text probability)
  cls: input "x" f32[B, 3, h, w] (the model's input size, pre-processed as its pipeline
       does) -> "probs" f32[B, classes]

Each model's input size, pre- and post-processing come from the pipeline's own tables: a
detector's from its generation (textrec/pipelines/ocr_versions.py), a text-line classifier's
from textrec/pipelines/orientation.py's SPECS, the page classifier's from
textrec/pipelines/doc_orientation.py and cls_preprocess.py.
"""
from __future__ import annotations

import dataclasses
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
from textrec.pipelines import cls_preprocess, doc_orientation, forward, ocr_versions
from textrec.pipelines import orientation, text_detection
from textrec.weights import pipeline_weights

OUTPUTS = {"det": "maps", "cls": "probs"}
TOLERANCE = 1e-4
DET_CHECK_SHAPES = ((2, 96, 160, 3), (1, 64, 224, 3))  # NHWC, multiples of 32 and not


@dataclasses.dataclass(frozen=True)
class AuxSpec:
  """What an export of a det / cls model declares and is checked on."""

  input_hw: tuple[int, int] | None  # None: dynamic (det)
  preprocess: dict[str, Any]        # inference.yml PreProcess
  postprocess: dict[str, Any]       # inference.yml PostProcess
  check_shapes: tuple[tuple[int, int, int, int], ...]  # NHWC inputs of the self-check


def _normalize_op(mean, std, order: str) -> dict:
  return {"NormalizeImage": {"mean": list(mean), "std": list(std), "scale": 1.0 / 255.0,
                             "order": order}}


def _det_spec(name: str) -> AuxSpec:
  gen = ocr_versions.of_det(name)
  p = gen.params
  pre = {"transform_ops": [
      {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
      {"DetResizeForTest": {"limit_side_len": p["text_det_limit_side_len"],
                            "limit_type": p["text_det_limit_type"],
                            "max_side_limit": p["text_det_max_side_limit"]}},
      _normalize_op(text_detection.IMAGENET_MEAN, text_detection.IMAGENET_STD, "hwc"),
      {"ToCHWImage": None}]}
  post = {"name": "DBPostProcess", "thresh": p["text_det_thresh"],
          "box_thresh": p["text_det_box_thresh"], "max_candidates": gen.max_candidates,
          "unclip_ratio": p["text_det_unclip_ratio"]}
  return AuxSpec(None, pre, post, DET_CHECK_SHAPES)


def _cls_ops(preprocess) -> list[dict]:
  """PaddleX's transform_ops for one of the pipeline's cls pre-processing functions."""
  if preprocess is orientation.resize_norm:  # PaddleOCR 2.x's ClsResizeImg
    return [{"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
            {"ClsResizeImg": {"image_shape": [3, orientation.HEIGHT, orientation.WIDTH]}}]
  norm = _normalize_op(cls_preprocess.IMAGENET_MEAN, cls_preprocess.IMAGENET_STD, "")
  if preprocess is cls_preprocess.textline_input:
    h, w = cls_preprocess.TEXTLINE_HW
    return [{"ResizeImage": {"size": [w, h]}}, norm, {"ToCHWImage": None}]
  if preprocess is cls_preprocess.doc_input:
    return [{"ResizeImage": {"resize_short": cls_preprocess.DOC_SHORT}},
            {"CropImage": {"size": cls_preprocess.DOC_CROP}}, norm, {"ToCHWImage": None}]
  raise UsageError(f"no PaddleX transform_ops known for {preprocess!r}")


def _cls_post(labels) -> dict:
  if tuple(labels) == orientation.LABELS:  # PaddleOCR 2.x's classifier
    return {"name": "ClsPostProcess", "label_list": list(labels)}
  # PaddleX's form (PostProcess.Topk) and `name`, which textrec reads for the kind.
  return {"name": "Topk", "Topk": {"topk": 1, "label_list": list(labels)}}


def _cls_spec(name: str) -> AuxSpec:
  if name in doc_orientation.MODELS:
    hw = (cls_preprocess.DOC_CROP, cls_preprocess.DOC_CROP)
    preprocess, labels = cls_preprocess.doc_input, doc_orientation.LABELS
  else:
    spec = orientation.spec_of(name)  # UsageError for a model of neither table
    hw, preprocess, labels = tuple(spec.input_hw), spec.preprocess, spec.labels
  return AuxSpec(hw, {"transform_ops": _cls_ops(preprocess)}, _cls_post(labels),
                 ((2, *hw, 3),))


def spec_of(name: str, kind: str) -> AuxSpec:
  """The AuxSpec of registered det / cls model `name`."""
  if kind == "det":
    return _det_spec(name)
  if kind == "cls":
    return _cls_spec(name)
  raise UsageError(f"kind must be 'det' or 'cls'; got {kind!r}")


def _nchw_fn(name: str, kind: str, variables: dict[str, Any]):
  fn = forward.model_fn(name, kind)
  if kind == "det":
    return lambda x: fn(variables, jnp.transpose(x, (0, 2, 3, 1)))[:, None]
  return lambda x: fn(variables, jnp.transpose(x, (0, 2, 3, 1)))


def inference_config(name: str, kind: str, source: str) -> dict:
  """inference.yml: PaddleX's fields (Global.model_name, PreProcess.transform_ops,
  PostProcess) and the ONNX's input / output."""
  spec = spec_of(name, kind)
  hw = [-1, -1] if spec.input_hw is None else list(spec.input_hw)
  io = {"input": {"name": "x", "dtype": "float32", "layout": "NCHW", "shape": [-1, 3, *hw]},
        "output": {"name": OUTPUTS[kind], "dtype": "float32"}}
  return {"Global": {"model_name": name, "source": source, "producer": "textrec",
                     "files": {"onnx": inference_yml.ONNX_FILE}, **io},
          "PreProcess": spec.preprocess, "PostProcess": spec.postprocess}


def export_aux(name: str, kind: str, variables: dict[str, Any], out_dir: str, opset: int = 17,
               source: str = "", check: bool = True) -> dict[str, str]:
  """Writes out_dir/inference.onnx and inference.yml; checks the ONNX against JAX on random
  inputs (max |Δ| <= 1e-4) unless check is False. Returns {"onnx": path, "yml": path}."""
  import jax2onnx  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top

  spec = spec_of(name, kind)
  os.makedirs(out_dir, exist_ok=True)
  fn = _nchw_fn(name, kind, variables)
  shape = ("B", 3, "32*h", "32*w") if spec.input_hw is None else ("B", 3, *spec.input_hw)
  t0 = time.perf_counter()
  with converters.conversion():
    model = jax2onnx.to_onnx(fn, inputs=[shape], opset=opset, model_name=name,
                             input_names=["x"], output_names=[OUTPUTS[kind]])
  onnx.helper.set_model_props(model, {"model_name": name, "producer": "textrec"})
  onnx.checker.check_model(model)
  onnx.save(model, os.path.join(out_dir, inference_yml.ONNX_FILE))
  print(f"export: {name} ONNX (opset {opset}) in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr)
  inference_yml.write(os.path.join(out_dir, inference_yml.YML_FILE),
                      inference_config(name, kind, source))
  out = {"onnx": os.path.join(out_dir, inference_yml.ONNX_FILE),
         "yml": os.path.join(out_dir, inference_yml.YML_FILE)}
  if check:
    err = check_against_jax(name, kind, variables, out["onnx"])
    if err > TOLERANCE:
      raise RuntimeError(f"export: {name} ONNX differs from JAX by {err:.2e} > {TOLERANCE:.0e}")
    print(f"export: {name} ONNX vs JAX on random inputs: max |Δ| = {err:.2e}", file=sys.stderr)
  return out


def check_against_jax(name: str, kind: str, variables: dict[str, Any], onnx_path: str) -> float:
  """max |Δ| between onnxruntime on `onnx_path` and the JAX forward of `name` on random
  inputs of the model's check shapes (AuxSpec.check_shapes)."""
  ort_fn = forward.OnnxForward(onnx_path, kind)
  rng = np.random.default_rng(0)
  jfn = jax.jit(forward.model_fn(name, kind))
  err = 0.0
  for s in spec_of(name, kind).check_shapes:
    x = rng.normal(0, 1, s).astype(np.float32)
    err = max(err, float(np.abs(ort_fn(x) - np.asarray(jfn(variables, x))).max()))
  return err


def run_ocr(config) -> int:
  """`--config=configs/ocr.py --config.mode=export`: the recognizer (as the recognizers'
  export), the detector, the text-line orientation classifier and the page orientation
  classifier of config.ocr (a model name left "" is the ocr_version's), each into
  <output_dir>/inference/<model name>/ (ONNX). Exit code 0 (bad input raises textrec.errors'
  errors, which the CLI shows as one line)."""
  o, e = config.ocr, config.export
  if e.format != "onnx":
    raise UsageError(f"the OCR pipeline exports ONNX only; got export.format={e.format}")
  gen = ocr_versions.get(o.ocr_version)
  root = os.path.join(config.output_dir, export.INFERENCE_DIR)
  rec_name = config.model.name or gen.rec_model
  aux = [("det", o.det_model or gen.det_model, o.det_model_dir, "det_model_dir"),
         ("cls", o.cls_model or gen.cls_model, o.cls_model_dir, "cls_model_dir"),
         ("cls", o.doc_orientation_model, o.doc_orientation_model_dir,
          "doc_orientation_model_dir")]
  for kind, name, _, _ in aux:
    spec_of(name, kind)  # a model with no export settings fails before any weights are read
  module, variables, cs, source = export.load_weights(
      rec_name, e.weight_path or config.predict.model_dir, config.data.dict_path,
      int(config.data.height), prefix=config.model.get("weights_prefix") or None)
  aux_vars = [pipeline_weights.load_aux(name, kind, model_dir or None)
              for kind, name, model_dir, _ in aux]
  paths = export.export(rec_name, module, variables, cs, os.path.join(root, rec_name), "onnx",
                        int(e.opset), int(config.data.height), source)
  for (kind, name, _, _), (v, src) in zip(aux, aux_vars):
    paths.update({f"{name} {k}": p for k, p in
                  export_aux(name, kind, v, os.path.join(root, name), int(e.opset), src).items()})
  for what, p in paths.items():
    print(f"export: {what:34s} {p}")
  flags = " ".join(f"--config.ocr.{arg}={root}/{name}" for _, name, _, arg in aux)
  print(f"export: run it without JAX: --config.ocr.ocr_version={o.ocr_version} "
        f"--config.model.name={rec_name} --config.predict.model_dir={root}/{rec_name} {flags}",
        file=sys.stderr)
  return 0
