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
`weight_path` is an Orbax run/checkpoint dir (textrec/checkpoint.py) or a `.pdparams` file.

How the graph is made (each step checked against the plain JAX model after export):
  * Conv2D traces with the "xla" implementation, so depthwise and 1x1 convs become `Conv`.
  * Inference BatchNorms trace as x * a + b with a, b folded on the host, which onnxruntime
    fuses into the preceding Conv (as Paddle's own export does).
  * jax2onnx runs with its jax/lax-level plugins only, plus `jnp.clip` -> Clip,
    `jax.nn.relu` -> Relu and `jax.nn.softmax` -> Softmax: its flax.linen shims replace our
    layers with their own (observed in 0.17.1: wrong symbolic widths after pooling, NCHW
    tensors labelled NHWC, opset-18 ReduceMean in an opset-17 graph), while the lax-level
    conversion is exactly the computation JAX runs.
  * Dense layers' Einsum nodes are rewritten as MatMul (same arithmetic, faster kernels).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from textrec import charset as charset_lib
from textrec import preprocess

INFERENCE_DIR = "inference"
ONNX_FILE = "inference.onnx"
SAVED_MODEL_DIR = "saved_model"
YML_FILE = "inference.yml"
FORMATS = ("onnx", "saved_model", "all")
INPUT_NAME, OUTPUT_NAME = "x", "probs"
TOLERANCE = 1e-4  # max |Δprob| the export self-check accepts

# jax2onnx plugin modules allowed to bind beyond the jax.lax / jax core ones.
_EXTRA_PLUGINS = ("jax2onnx.plugins.jax.numpy.clip",
                  "jax2onnx.plugins.jax.nn.relu", "jax2onnx.plugins.jax.nn.softmax")
_LAX_PLUGINS = ("jax2onnx.plugins.jax.lax.", "jax2onnx.plugins.jax.core.")


# ----------------------------------------------------------------------------- weights


def inference_module(name: str, num_classes: int):
  """The registered model `name` in deploy form, without training-only branches."""
  import inspect  # pylint: disable=g-import-not-at-top

  from textrec import registry  # pylint: disable=g-import-not-at-top

  ctor = registry.get_model(name)
  kw: dict[str, Any] = dict(num_classes=num_classes, deploy=True)
  if "with_nrtr" in inspect.signature(ctor).parameters:
    kw["with_nrtr"] = False
  return ctor(**kw)


def _flat(tree: Any) -> dict[tuple[str, ...], Any]:
  from flax import traverse_util  # pylint: disable=g-import-not-at-top

  return traverse_util.flatten_dict(dict(tree)) if tree else {}


def fit_variables(module, variables: dict, height: int = preprocess.HEIGHT,
                  source: str = "weights") -> dict:
  """Keeps exactly the variables `module` uses, as float32 numpy; raises naming what is
  missing or mis-shaped (e.g. a checkpoint of another model or dictionary)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax import traverse_util  # pylint: disable=g-import-not-at-top

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
      raise ValueError("; ".join(msg))
    out[col] = traverse_util.unflatten_dict(
        {k: np.asarray(have[k], np.float32) for k in want})
  return out


def load_weights(name: str, weight_path: str = "", dict_path: str = "",
                 height: int = preprocess.HEIGHT) -> tuple[Any, dict, charset_lib.Charset, str]:
  """-> (deploy module, deploy variables (numpy), Charset, description of the source).

  weight_path: "" (official), an Orbax run/checkpoint dir, or a PaddleOCR `.pdparams` file.
  """
  from textrec.weights import loader  # pylint: disable=g-import-not-at-top

  if weight_path and os.path.isdir(weight_path) and os.path.isfile(
      os.path.join(weight_path, YML_FILE)):
    raise ValueError(f"export.weight_path {weight_path!r} is an exported inference dir "
                     "already; pass the training checkpoint it came from")
  w = loader.load_weights(name, weight_path, dict_path or None)
  variables, cs, source = w.variables, w.charset, w.source
  if not w.deploy:
    from textrec.models import zoo  # pylint: disable=g-import-not-at-top

    variables = zoo.to_deploy(name, variables)
  module = inference_module(name, cs.num_classes)
  return module, fit_variables(module, variables, height, source), cs, source


def _bn_as_affine(next_fun, args, kwargs, context):
  """flax interceptor: an inference-mode BatchNorm becomes x * a + b with a, b folded on the
  host (a = scale / sqrt(var + eps), b = bias - mean * a), which onnxruntime fuses into the
  preceding Conv (as Paddle's export fuses conv + BN). Other calls pass through."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top

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
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def fn(x):
    with (nn.intercept_methods(_bn_as_affine) if fold_bn else contextlib.nullcontext()):
      out = module.apply(variables, jnp.transpose(x, (0, 2, 3, 1)), train=False)
    return jax.nn.softmax(out["ctc_logits"].astype(jnp.float32), axis=-1)

  return fn


# ----------------------------------------------------------------------------- converters


@contextlib.contextmanager
def _lax_level_plugins() -> Iterator[None]:
  """Within: jax2onnx traces with its jax/lax-level plugins (see the module docstring)."""
  from jax.extend import core as jex_core  # pylint: disable=g-import-not-at-top
  from jax2onnx.converter import conversion_api as api  # pylint: disable=g-import-not-at-top
  from jax2onnx.plugins import plugin_system as ps  # pylint: disable=g-import-not-at-top

  if not hasattr(api, "_activate_plugin_worlds"):  # another jax2onnx: its default plugins
    print("export: warning: this jax2onnx has no _activate_plugin_worlds; converting with "
          "its default plugins", file=sys.stderr)
    yield
    return

  @contextlib.contextmanager
  def worlds():
    ps.import_all_plugins()
    with contextlib.ExitStack() as stack:
      prims = []
      for plugin in ps.PLUGIN_REGISTRY.values():
        mod = type(plugin).__module__
        if not isinstance(plugin, ps.PrimitiveLeafPlugin):
          continue
        if not (mod.startswith(_LAX_PLUGINS) or mod in _EXTRA_PLUGINS):
          continue
        stack.enter_context(type(plugin).plugin_binding())
        prim = getattr(type(plugin), "_PRIM", None)
        if isinstance(prim, jex_core.Primitive):
          prims.append(prim)
      api.backfill_missing_transpose_rules(prims)
      yield

  saved = api._activate_plugin_worlds  # pylint: disable=protected-access
  api._activate_plugin_worlds = worlds  # pylint: disable=protected-access
  try:
    yield
  finally:
    api._activate_plugin_worlds = saved  # pylint: disable=protected-access


def _einsum_to_matmul(model) -> int:
  """Rewrites Einsum "...k,kn->...n" (a Dense layer: constant 2-D right operand) as MatMul,
  which onnxruntime and TensorRT run faster. Returns how many were rewritten."""
  import onnx  # pylint: disable=g-import-not-at-top

  inits = {t.name: t for t in model.graph.initializer}
  n = 0
  for node in model.graph.node:
    if node.op_type != "Einsum" or len(node.input) != 2 or node.input[1] not in inits:
      continue
    eq = next((a.s.decode() for a in node.attribute if a.name == "equation"), "")
    lhs, _, out = eq.replace(" ", "").partition("->")
    ins = lhs.split(",")
    if len(ins) != 2 or len(ins[1]) != 2 or len(inits[node.input[1]].dims) != 2:
      continue
    a, (k, m) = ins[0], ins[1]
    if not a or a[-1] != k or k in a[:-1] or m in a or out != a[:-1] + m:
      continue
    node.op_type = "MatMul"
    del node.attribute[:]
    n += 1
  if n:
    onnx.checker.check_model(model)
  return n


def to_onnx(fn: Callable, height: int = preprocess.HEIGHT, opset: int = 17,
            name: str = "textrec", chars: Sequence[str] = ()):
  """fn (x f32[B, 3, height, W] -> probs) -> onnx.ModelProto with dynamic B and W."""
  import jax2onnx  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top

  from textrec.models import layers  # pylint: disable=g-import-not-at-top

  serde_log = logging.getLogger("onnx_ir.serde")  # value_info it skips: harmless, noisy
  level = serde_log.level
  serde_log.setLevel(logging.ERROR)
  try:
    with _lax_level_plugins(), layers.conv_impl("xla"):
      model = jax2onnx.to_onnx(fn, inputs=[("B", 3, height, "W")], opset=opset,
                               model_name=name, input_names=[INPUT_NAME],
                               output_names=[OUTPUT_NAME])
  finally:
    serde_log.setLevel(level)
  _einsum_to_matmul(model)
  chars = list(chars)
  if chars and chars[-1] == " ":  # PaddleOCR/RapidOCR append the space themselves
    chars = chars[:-1]
  meta = {"character": "\n".join(chars), "model_name": name, "producer": "textrec"}
  onnx.helper.set_model_props(model, meta)
  onnx.checker.check_model(model)
  return model


def save_saved_model(fn: Callable, path: str, height: int = preprocess.HEIGHT) -> None:
  """Writes a TF SavedModel: serving_default(x f32[B, 3, height, W]) -> {"probs"}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  from textrec.models import layers  # pylint: disable=g-import-not-at-top

  spec = tf.TensorSpec([None, 3, height, None], tf.float32, name=INPUT_NAME)
  err = None
  for platforms in (("cpu", "cuda"), ("cpu",)):
    try:
      with layers.conv_impl("xla"):
        converted = jax2tf.convert(fn, polymorphic_shapes=[f"(b, 3, {height}, w)"],
                                   native_serialization_platforms=platforms,
                                   with_gradient=False)
        module = tf.Module()
        module.serve = tf.function(lambda x: {OUTPUT_NAME: converted(x)}, autograph=False,
                                   input_signature=[spec])
        module.serve.get_concrete_function()
      break
    except Exception as e:  # pylint: disable=broad-except
      err = e
      print(f"export: saved_model lowering for {platforms} failed ({e}); retrying",
            file=sys.stderr)
  else:
    raise RuntimeError(f"jax2tf could not convert the model: {err}") from err
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve},
                      options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))


# ----------------------------------------------------------------------------- inference.yml


def inference_config(name: str, cs: charset_lib.Charset, files: dict[str, str],
                     height: int = preprocess.HEIGHT, source: str = "") -> dict:
  """What inference.yml holds (PaddleX-like sections: Global, PreProcess, PostProcess)."""
  return {
      "Global": {"model_name": name, "source": source, "files": dict(files),
                 "input": {"name": INPUT_NAME, "dtype": "float32", "layout": "NCHW",
                           "shape": [-1, 3, height, -1]},
                 "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [-1, -1,
                                                                             cs.num_classes],
                            "meaning": "per-frame class probabilities (softmax); T = W / 8 "
                                       "when W is a multiple of 8"}},
      "PreProcess": {
          "color": "BGR",
          "height": height,
          "resize": "keep aspect: width = min(ceil(height * w / h), max_width), "
                    "cv2.INTER_LINEAR; then zero-pad on the right to the pad width",
          "min_width": preprocess.MIN_WIDTH,
          "max_width": preprocess.MAX_WIDTH,
          "pad_widths": list(preprocess.BUCKETS),
          "pad_width_rule": "smallest pad width >= max(min_width, resized width); any width "
                            "works, these keep results batch-independent",
          "normalize": {"scale": 1.0 / 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                        "formula": "(x * scale - mean) / std", "pad_value": 0.0},
      },
      "PostProcess": {"name": "CTCLabelDecode", "blank_index": 0,
                      "character_dict": list(cs.chars)},
  }


def write_yml(path: str, cfg: dict) -> None:
  import yaml  # pylint: disable=g-import-not-at-top

  with open(path, "w", encoding="utf-8") as f:
    yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False, width=100)


# ----------------------------------------------------------------------------- export


def _size(path: str) -> int:
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def check_export(fn: Callable, out_dir: str, height: int = preprocess.HEIGHT,
                 widths: Sequence[int] = (80, 333), tol: float = TOLERANCE) -> dict[str, float]:
  """Runs each exported file on random inputs against `fn` (JAX): {file: max |Δprob|};
  raises if any exceeds `tol`."""
  import jax  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  xs = [rng.uniform(-1, 1, (2, 3, height, w)).astype(np.float32) for w in widths]
  jitted = jax.jit(fn)
  refs = [np.asarray(jitted(x)) for x in xs]
  runners = {}
  if os.path.isfile(os.path.join(out_dir, ONNX_FILE)):
    from textrec import onnx_backend  # pylint: disable=g-import-not-at-top

    runners[ONNX_FILE] = onnx_backend.load_inference_dir(out_dir)[0]
  if os.path.isdir(os.path.join(out_dir, SAVED_MODEL_DIR)):
    runners[SAVED_MODEL_DIR] = load_saved_model(os.path.join(out_dir, SAVED_MODEL_DIR))
  out = {}
  for k, run_fn in runners.items():
    out[k] = max(float(np.abs(run_fn(x) - r).max()) for x, r in zip(xs, refs))
    if out[k] > tol:
      raise RuntimeError(f"export: {k} differs from the JAX model by {out[k]:.2e} > {tol}")
  return out


def load_saved_model(path: str) -> Callable[[np.ndarray], np.ndarray]:
  """An exported SavedModel as x f32[B, 3, H, W] -> probs (numpy)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  serve = tf.saved_model.load(path).signatures["serving_default"]
  return lambda x: serve(**{INPUT_NAME: tf.constant(x, tf.float32)})[OUTPUT_NAME].numpy()


def export(name: str, module, variables: dict, cs: charset_lib.Charset, out_dir: str,
           fmt: str = "onnx", opset: int = 17, height: int = preprocess.HEIGHT,
           source: str = "", check: bool = True) -> dict[str, str]:
  """Writes the files of `fmt` and inference.yml into out_dir; returns {kind: path}."""
  if fmt not in FORMATS:
    raise ValueError(f"export.format must be one of {FORMATS}, got {fmt!r}")
  os.makedirs(out_dir, exist_ok=True)
  fn = probs_fn(module, variables, fold_bn=True)
  files: dict[str, str] = {}
  if fmt in ("onnx", "all"):
    import onnx  # pylint: disable=g-import-not-at-top

    t0 = time.perf_counter()
    model = to_onnx(fn, height, opset, name, cs.chars)
    onnx.save(model, os.path.join(out_dir, ONNX_FILE))
    files["onnx"] = ONNX_FILE
    print(f"export: ONNX (opset {opset}) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
  if fmt in ("saved_model", "all"):
    t0 = time.perf_counter()
    save_saved_model(fn, os.path.join(out_dir, SAVED_MODEL_DIR), height)
    files["saved_model"] = SAVED_MODEL_DIR
    print(f"export: SavedModel in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
  write_yml(os.path.join(out_dir, YML_FILE), inference_config(name, cs, files, height, source))
  files["yml"] = YML_FILE
  if check:  # against the model as JAX runs it (BatchNorm unfolded, "fast" convs)
    for k, d in check_export(probs_fn(module, variables, fold_bn=False), out_dir,
                             height).items():
      print(f"export: {k} vs JAX on random inputs: max |Δprob| = {d:.2e}", file=sys.stderr)
  return {k: os.path.join(out_dir, v) for k, v in files.items()}


def run(config) -> int:
  """`--config.mode=export`: writes <output_dir>/inference/. Exit code 0, 2 on bad input."""
  e = config.export
  if e.format not in FORMATS:
    print(f"export: --config.export.format must be one of {FORMATS}, got {e.format!r}",
          file=sys.stderr)
    return 2
  height = int(config.data.height)
  try:
    module, variables, cs, source = load_weights(config.model.name, e.weight_path,
                                                 config.data.dict_path, height)
  except (FileNotFoundError, ValueError, KeyError, ModuleNotFoundError) as err:
    print(f"export: cannot load the weights: {err}", file=sys.stderr)
    return 2
  out_dir = os.path.join(config.output_dir, INFERENCE_DIR)
  paths = export(config.model.name, module, variables, cs, out_dir, e.format, int(e.opset),
                 height, source)
  for kind, p in paths.items():
    print(f"export: {kind:12s} {p}  {_size(p) / 1e6:.2f} MB")
  return 0
