"""Converters from a JAX probability function to serving formats (used by textrec/export/export.py).

  to_onnx(fn)                 -> onnx.ModelProto, input "x" f32[B, 3, H, W], output "probs",
                                 B and W dynamic (jax2onnx, jax/lax-level plugins only)
  save_saved_model(fn, path)  -> TF SavedModel, serving_default(x) -> {"probs"} (jax2tf)
  load_saved_model(path)      -> x -> probs (numpy), for checks

Both trace Conv2D with the "xla" implementation, so depthwise and 1x1 convs become `Conv`.
jax2onnx runs with its jax/lax-level plugins only, plus `jnp.clip` -> Clip, `jax.nn.relu` ->
Relu and `jax.nn.softmax` -> Softmax: its flax.linen shims replace our layers with their own
(observed in 0.17.1: wrong symbolic widths after pooling, NCHW tensors labelled NHWC,
opset-18 ReduceMean in an opset-17 graph), while the lax-level conversion is exactly the
computation JAX runs. Dense layers' Einsum nodes are rewritten as MatMul.
"""
from __future__ import annotations

import contextlib
import logging
import re
import sys
from typing import Callable, Iterator, Sequence

import numpy as np

from textrec import charset as charset_lib
from textrec.inference import preprocess
from textrec.runtime import settings

INPUT_NAME, OUTPUT_NAME = "x", "probs"

# jax2onnx plugin modules allowed to bind beyond the jax.lax / jax core ones.
_EXTRA_PLUGINS = ("jax2onnx.plugins.jax.numpy.clip",
                  "jax2onnx.plugins.jax.nn.relu", "jax2onnx.plugins.jax.nn.softmax")
_LAX_PLUGINS = ("jax2onnx.plugins.jax.lax.", "jax2onnx.plugins.jax.core.")


@contextlib.contextmanager
def _symbolic_dims_as_names() -> Iterator[None]:
  """Within: onnx_ir takes JAX's symbolic dimensions (e.g. the batch "B") by name. jax2onnx
  0.17's lax.pad lowering hands them to onnx_ir as they are, which rejects them, so models
  that pad explicitly (PPHGNetV2's and PPLCNetV4's SAME padding) did not convert."""
  from jax import export as jax_export  # pylint: disable=g-import-not-at-top
  from onnx_ir import _core  # pylint: disable=g-import-not-at-top

  saved = _core._maybe_convert_to_symbolic_dim  # pylint: disable=protected-access

  def convert(dim):
    if jax_export.is_symbolic_dim(dim):
      return saved(str(dim))
    return saved(dim)

  _core._maybe_convert_to_symbolic_dim = convert  # pylint: disable=protected-access
  try:
    with _scaled_dim_origins():
      yield
  finally:
    _core._maybe_convert_to_symbolic_dim = saved  # pylint: disable=protected-access


@contextlib.contextmanager
def _scaled_dim_origins() -> Iterator[None]:
  """Within: a symbol that jax2onnx 0.17 finds no input axis for (the detectors' "h" of an
  input dimension "32*h", which a global mean divides by) is read as that axis over its
  factor (Shape(x)[axis] / 32)."""
  from jax2onnx.converter import lower_dimexpr  # pylint: disable=g-import-not-at-top

  cls = lower_dimexpr.LowerDimExpr
  saved = cls._get_dim_value  # pylint: disable=protected-access

  def get_dim_value(self, name: str):
    try:
      return saved(self, name)
    except ValueError:
      origins = getattr(self.ctx, "_sym_origin_str", {})
      for key in list(origins):
        m = re.fullmatch(r"(\d+)\*" + re.escape(name), str(key).replace(" ", ""))
        if m:
          value = self._convert_op("floordiv", [saved(self, key),  # pylint: disable=protected-access
                                                self._get_scalar(int(m.group(1)))])  # pylint: disable=protected-access
          self.compute_cache[name] = value
          return value
      raise

  cls._get_dim_value = get_dim_value  # pylint: disable=protected-access
  try:
    yield
  finally:
    cls._get_dim_value = saved  # pylint: disable=protected-access


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


@contextlib.contextmanager
def quiet_serde() -> Iterator[None]:
  """Silences onnx_ir.serde's warnings about value_info it skips (harmless, noisy), and the
  converter's INFO lines: jax2onnx logs them on the root logger, which shows them wherever
  another library lowered the root level (paddle's import sets it to INFO)."""
  serde_log, root = logging.getLogger("onnx_ir.serde"), logging.getLogger()
  level, root_level = serde_log.level, root.level
  serde_log.setLevel(logging.ERROR)
  root.setLevel(max(root_level, logging.WARNING))
  try:
    yield
  finally:
    serde_log.setLevel(level)
    root.setLevel(root_level)


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


@contextlib.contextmanager
def conversion() -> Iterator[None]:
  """Within: jax2onnx converts as textrec's exports need it (lax-level plugins, symbolic
  dimensions by name, XLA's own convolutions, no native kernels, quiet logs)."""
  with (quiet_serde(), _lax_level_plugins(), _symbolic_dims_as_names(), settings.conv_impl("xla"),
        settings.native_kernels_off()):
    yield


def to_onnx(fn: Callable, height: int = preprocess.HEIGHT, opset: int = 17,
            name: str = "textrec", chars: Sequence[str] = ()):
  """fn (x f32[B, 3, height, W] -> probs) -> onnx.ModelProto with dynamic B and W."""
  import jax2onnx  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top

  with conversion():
    model = jax2onnx.to_onnx(fn, inputs=[("B", 3, height, "W")], opset=opset,
                             model_name=name, input_names=[INPUT_NAME],
                             output_names=[OUTPUT_NAME])
  _einsum_to_matmul(model)
  meta = {"character": "\n".join(charset_lib.paddle_list(chars)), "model_name": name,
          "producer": "textrec"}
  onnx.helper.set_model_props(model, meta)
  onnx.checker.check_model(model)
  return model


def save_saved_model(fn: Callable, path: str, height: int = preprocess.HEIGHT) -> None:
  """Writes a TF SavedModel: serving_default(x f32[B, 3, height, W]) -> {"probs"}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  spec = tf.TensorSpec([None, 3, height, None], tf.float32, name=INPUT_NAME)
  err = None
  # tf.saved_model.save traces the function again: it too runs under "xla" convs, and
  # without the native kernel (TF cannot run it).
  with settings.conv_impl("xla"), settings.native_kernels_off():
    for platforms in (("cpu", "cuda"), ("cpu",)):
      try:
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


def load_saved_model(path: str) -> Callable[[np.ndarray], np.ndarray]:
  """An exported SavedModel as x f32[B, 3, H, W] -> probs (numpy)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  serve = tf.saved_model.load(path).signatures["serving_default"]
  return lambda x: serve(**{INPUT_NAME: tf.constant(x, tf.float32)})[OUTPUT_NAME].numpy()
