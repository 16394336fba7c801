"""Export for serving: deploy-form ONNX (jax2onnx) and TF SavedModel (jax2tf), + inference.yml.

  python -m textrec.main --config=configs/v4_mobile.py --config.mode=export \
      [--config.export.weight_path=CKPT] --config.export.format=onnx|saved_model|all

writes `<output_dir>/inference/`:
  inference.onnx   input "x" f32[B, 3, 48, W] (NCHW, normalised BGR), output "probs"
                   f32[B, T, C] (softmax over classes, T = W / 8); B and W dynamic. Its
                   metadata "character" holds the dictionary as PaddleOCR/RapidOCR store it.
  saved_model/     signature "serving_default": x f32[B, 3, 48, W] (NCHW, as the ONNX) ->
                   {"probs": f32[B, T, C]}; B and W polymorphic; runs on CPU and CUDA.
  inference.yml    model name, files, input rules (height, widths, pad widths),
                   normalisation and the character list: all a server needs.
The model is the deploy form: LearnableRepLayers fused (textrec/models/reparam.py) and no
NRTR guidance head. Without `weight_path` the official weights are exported; otherwise
`weight_path` is a Paddle inference dir, an Orbax run/checkpoint dir (textrec/formats/checkpoint.py) or
a PaddleOCR `.pdparams` file (textrec/weights/loader.py tells them apart).

How the graph is made (each step checked against the plain JAX model after export):
  * Conv2D traces with the "xla" implementation, so depthwise and 1x1 convs become `Conv`;
    jax2onnx uses its jax/lax-level plugins only (textrec/export/converters.py says why).
  * Inference BatchNorms trace as x * a + b with a, b folded on the host, which onnxruntime
    fuses into the preceding Conv (as Paddle's own export does).
  * Dense layers' Einsum nodes are rewritten as MatMul (same arithmetic, faster kernels).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
from typing import Any, Callable, Sequence

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from textrec import charset as charset_lib
from textrec.errors import UsageError, WeightsError
from textrec.export import converters
from textrec.export.converters import load_saved_model  # noqa: F401  (export.load_saved_model)
from textrec.formats import inference_yml, model_dir
from textrec.inference import onnx_backend, preprocess
from textrec.models import recognizer, registry, zoo
from textrec.weights import loader

INFERENCE_DIR = "inference"
SAVED_MODEL_DIR = "saved_model"
FORMATS = ("onnx", "saved_model", "all")
TOLERANCE = 1e-4  # max |Δprob| the export self-check accepts


# ----------------------------------------------------------------------------- weights


def inference_module(name: str, num_classes: int, dtype: Any = None):
  """The registered model `name` in deploy form, without training-only branches."""
  ctor = registry.get_model(name)
  kw: dict[str, Any] = dict(num_classes=num_classes, deploy=True)
  if "with_nrtr" in inspect.signature(ctor).parameters:
    kw["with_nrtr"] = False
  if dtype is not None:
    kw["dtype"] = dtype
  return ctor(**kw)


def _flat(tree: Any) -> dict[tuple[str, ...], Any]:
  return traverse_util.flatten_dict(dict(tree)) if tree else {}


def fit_variables(module, variables: dict, height: int = preprocess.HEIGHT,
                  source: str = "weights") -> dict:
  """Keeps exactly the variables `module` uses, as float32 numpy; raises naming what is
  missing or mis-shaped (e.g. a checkpoint of another model or dictionary)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0),
                                              jnp.zeros((1, height, 320, 3)), train=False))
  out = {}
  for col, tmpl in shapes.items():
    have = _flat(variables.get(col, {}))
    want = _flat(tmpl)
    missing = [k for k in want if k not in have]
    wrong = [(k, tuple(np.shape(have[k])), want[k].shape) for k in want
             if k in have and tuple(np.shape(have[k])) != tuple(want[k].shape)]
    if missing or wrong:
      msg = [f"{source}: the weights do not fit {type(module).__name__} (deploy form)"]
      if missing:
        msg.append(f"{len(missing)} {col} missing, e.g. " +
                   ", ".join("/".join(k) for k in missing[:4]))
      if wrong:
        msg.append("shape mismatch: " + ", ".join(f"{'/'.join(k)} {a} != {b}"
                                                  for k, a, b in wrong[:4]))
      raise WeightsError("; ".join(msg))
    out[col] = traverse_util.unflatten_dict(
        {k: np.asarray(have[k], np.float32) for k in want})
  return out


def load_weights(name: str, weight_path: str = "", dict_path: str = "",
                 height: int = preprocess.HEIGHT, prefix: str | None = None
                 ) -> tuple[Any, dict, charset_lib.Charset, str]:
  """-> (deploy module, deploy variables (numpy), Charset, description of the source).

  weight_path: "" (official), a Paddle inference dir, an Orbax run/checkpoint dir, or a
  PaddleOCR `.pdparams` file (prefix: the model of a distillation checkpoint).
  """
  if weight_path and model_dir.resolve(weight_path)[0] == "exported":
    raise WeightsError(f"export.weight_path {weight_path!r} is a textrec export already; pass "
                       "the training checkpoint it came from")
  w = loader.load_weights(name, weight_path, dict_path or None, prefix=prefix)
  variables, cs, source = w.variables, w.charset, w.source
  if not w.deploy:
    variables = zoo.to_deploy(name, variables)
  module = inference_module(name, cs.num_classes)
  return module, fit_variables(module, variables, height, source), cs, source


def _bn_as_affine(next_fun, args, kwargs, context):
  """flax interceptor: an inference-mode BatchNorm becomes x * a + b with a, b folded on the
  host (a = scale / sqrt(var + eps), b = bias - mean * a), which onnxruntime fuses into the
  preceding Conv (as Paddle's export fuses conv + BN). Other calls pass through."""
  mod = context.module
  if (not isinstance(mod, nn.BatchNorm) or context.method_name != "__call__"
      or not kwargs.get("use_running_average", mod.use_running_average)
      or len(args) != 1 or mod.axis not in (-1, args[0].ndim - 1)):
    return next_fun(*args, **kwargs)
  try:
    params, stats = mod.variables["params"], mod.variables["batch_stats"]
    var = np.asarray(stats["var"], np.float64)
    a = np.asarray(params["scale"], np.float64) / np.sqrt(var + mod.epsilon)
    b = np.asarray(params["bias"], np.float64) - np.asarray(stats["mean"], np.float64) * a
  except Exception:  # pylint: disable=broad-except  (traced variables: the plain path)
    return next_fun(*args, **kwargs)
  x = args[0]
  return x * a.astype(np.float32) + b.astype(np.float32)


def probs_fn(module, variables: dict, fold_bn: bool = False) -> Callable:
  """x f32[B, 3, H, W] (NCHW, normalised BGR) -> probabilities f32[B, T, C].

  fold_bn: inference BatchNorms as per-channel affines folded from constant variables (for
  export; `variables` must be concrete arrays, not traced).
  """
  def fn(x):
    with (nn.intercept_methods(_bn_as_affine) if fold_bn else contextlib.nullcontext()):
      out = module.apply(variables, jnp.transpose(x, (0, 2, 3, 1)), train=False)
    return recognizer.probs(out)

  return fn


# ----------------------------------------------------------------------------- export


def _size(path: str) -> int:
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def check_export(fn: Callable, out_dir: str, height: int = preprocess.HEIGHT,
                 widths: Sequence[int] = (80, 333), tol: float = TOLERANCE,
                 fn64: Callable | None = None) -> dict[str, float]:
  """Runs each exported file on random inputs against `fn` (JAX): {file: max |Δprob|};
  raises if any exceeds the bar.

  The bar is `tol`, or 4x the model's own float32 round-off where that is larger: the max
  |Δprob| between `fn` and `fn64`, the same model computed in float64 (returned as
  "jax_roundoff"). A trained model's round-off is far below 1e-4 (mobile: ~1e-6 on random
  inputs), but a barely trained one (BatchNorm statistics after a few steps, huge logits)
  can amplify it past 1e-4; a conversion error stays far above either bar.
  """
  rng = np.random.default_rng(0)
  xs = [rng.uniform(-1, 1, (2, 3, height, w)).astype(np.float32) for w in widths]
  refs = [np.asarray(y) for y in map(jax.jit(fn), xs)]
  roundoff = 0.0
  if fn64 is not None:
    try:
      with jax.enable_x64(True):
        f = jax.jit(fn64)
        roundoff = max(float(np.abs(np.asarray(f(x.astype(np.float64)), np.float64) - r).max())
                       for x, r in zip(xs, refs))
    except Exception as e:  # pylint: disable=broad-except
      print(f"export: no float64 run of the model ({type(e).__name__}: {e}); checking against "
            f"{tol:.0e} alone", file=sys.stderr)
  bar = max(tol, 4 * roundoff)
  runners = {}
  if os.path.isfile(os.path.join(out_dir, inference_yml.ONNX_FILE)):

    runners[inference_yml.ONNX_FILE] = onnx_backend.load_inference_dir(out_dir)[0]
  if os.path.isdir(os.path.join(out_dir, SAVED_MODEL_DIR)):
    runners[SAVED_MODEL_DIR] = load_saved_model(os.path.join(out_dir, SAVED_MODEL_DIR))
  out = {"jax_roundoff": roundoff}
  for k, run_fn in runners.items():
    out[k] = max(float(np.abs(run_fn(x) - r).max()) for x, r in zip(xs, refs))
    if out[k] > bar:
      raise RuntimeError(f"export: {k} differs from the JAX model by {out[k]:.2e} > {bar:.2e} "
                         f"(the larger of {tol:.0e} and 4x the model's float32 round-off, "
                         f"{roundoff:.2e})")
  return out


def _float64_fn(name: str, module, variables: dict) -> Callable:
  """probs_fn of the same model in float64 (to be traced under jax.enable_x64)."""
  m64 = inference_module(name, module.head.num_classes, jnp.float64)
  v64 = jax.tree.map(lambda a: np.asarray(a, np.float64)
                     if np.issubdtype(np.asarray(a).dtype, np.floating) else a, variables)
  inner = probs_fn(m64, v64)

  def fn(x):
    return inner(x.astype(jnp.float64))
  return fn


def export(name: str, module, variables: dict, cs: charset_lib.Charset, out_dir: str,
           fmt: str = "onnx", opset: int = 17, height: int = preprocess.HEIGHT,
           source: str = "", check: bool = True) -> dict[str, str]:
  """Writes the files of `fmt` and inference.yml into out_dir; returns {kind: path}."""
  if fmt not in FORMATS:
    raise UsageError(f"export.format must be one of {FORMATS}, got {fmt!r}")
  os.makedirs(out_dir, exist_ok=True)
  fn = probs_fn(module, variables, fold_bn=True)
  files: dict[str, str] = {}
  if fmt in ("onnx", "all"):
    import onnx  # pylint: disable=g-import-not-at-top

    t0 = time.perf_counter()
    model = converters.to_onnx(fn, height, opset, name, cs.chars)
    onnx.save(model, os.path.join(out_dir, inference_yml.ONNX_FILE))
    files["onnx"] = inference_yml.ONNX_FILE
    print(f"export: ONNX (opset {opset}) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
  if fmt in ("saved_model", "all"):
    t0 = time.perf_counter()
    converters.save_saved_model(fn, os.path.join(out_dir, SAVED_MODEL_DIR), height)
    files["saved_model"] = SAVED_MODEL_DIR
    print(f"export: SavedModel in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
  inference_yml.write(os.path.join(out_dir, inference_yml.YML_FILE),
                      onnx_backend.inference_config(name, cs, files, height, source))
  files["yml"] = inference_yml.YML_FILE
  if check:  # against the model as JAX runs it (BatchNorm unfolded, "fast" convs)
    diffs = check_export(probs_fn(module, variables, fold_bn=False), out_dir, height,
                         fn64=_float64_fn(name, module, variables))
    print(f"export: the JAX model's float32 round-off (vs float64) on random inputs: max "
          f"|Δprob| = {diffs.pop('jax_roundoff'):.2e}", file=sys.stderr)
    for k, d in diffs.items():
      print(f"export: {k} vs JAX on random inputs: max |Δprob| = {d:.2e}", file=sys.stderr)
  return {k: os.path.join(out_dir, v) for k, v in files.items()}


def run(config) -> int:
  """`--config.mode=export`: writes <output_dir>/inference/; exit code 0 (bad input raises
  textrec.errors' errors, which the CLI shows as one line)."""
  e = config.export
  if e.format not in FORMATS:
    raise UsageError(f"export.format must be one of {FORMATS}, got {e.format!r}")
  height = int(config.data.height)
  module, variables, cs, source = load_weights(
      config.model.name, e.weight_path, config.data.dict_path, height,
      prefix=config.model.get("weights_prefix") or None)
  out_dir = os.path.join(config.output_dir, INFERENCE_DIR)
  paths = export(config.model.name, module, variables, cs, out_dir, e.format, int(e.opset),
                 height, source)
  for kind, p in paths.items():
    print(f"export: {kind:12s} {p}  {_size(p) / 1e6:.2f} MB")
  return 0
