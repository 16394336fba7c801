"""The recognizers' dense convolutions and matmuls, one at a time: XLA:CPU vs onnxruntime.

Where does a model's gap to a reference runtime sit: in the big convolution/matmul kernels,
or in everything between them? For each model (`--models`) at [B, 48, 320, 3] (`--batch`),
every dense `conv_general_dilated` and weight matmul (`dot_general` with a 2-D right-hand
side: the 1x1 convs and linear layers) of the forward textrec runs is taken from its jaxpr;
each distinct shape is timed alone (median of `--repeats` rounds, alternating) under each
XLA:CPU kernel variant (textrec.runtime.xla_cpu) and as a single onnxruntime node (Conv or
MatMul, weights as initializers, its default thread count). Printed per shape: how often the
model runs it, GFLOP per call, GFLOP/s per runtime; per model: the summed time of these
kernels per runtime (count x ms) and the FLOPs they hold against the whole forward's
(XLA's cost analysis). Depthwise and grouped convs, attention and element-wise work are
not in it. Weights: random deploy-form (the compute does not depend on them). Each timing
includes one call's overhead from Python (tens of microseconds on either runtime), which
dominates the small ops: read the large ones, and the sums.

`--depthwise` instead times each depthwise conv of the forwards (the shapes textrec hands to
its native kernel, textrec.runtime.native_depthwise) four ways: XLA:CPU's shifted
multiply-adds (what runs without the native kernel) under each variant, the native kernel, and
onnxruntime's grouped Conv; and sums them per forward.

`--peak` instead times one large float32 matmul (2048^3, numpy's BLAS and XLA:CPU's dot under
each variant), the fastest rate this machine gives any float32 kernel here, and prints each
model's FLOPs per image (XLA's cost analysis) at that rate: a lower bound on its forward in
float32 for any runtime that computes those products.

`--attention` instead times the three ways to run the SVTR attention at the recognizers'
shapes (batch 1 and 6): batched (one call for the batch), a loop over the images (what textrec
runs on the CPU: svtr_neck._attend_per_image) and a loop over (image, head) pairs.

  .venv/bin/python scripts/bench_kernels.py [--models ...] [--batch 6] [--repeats 3]
  .venv/bin/python scripts/bench_kernels.py --depthwise [--batch 6]
  .venv/bin/python scripts/bench_kernels.py --attention
  .venv/bin/python scripts/bench_kernels.py --peak
"""
from __future__ import annotations

import argparse
import collections
import os
import pathlib
import statistics
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_runtimes import MODELS, forward_gflop, weights  # noqa: E402  pylint: disable=g-bad-import-order


def _eqns(jaxpr):
  """Every equation of a closed jaxpr, sub-jaxprs (pjit, custom_vjp, ...) included."""
  import jax  # pylint: disable=g-import-not-at-top

  for e in jaxpr.eqns:
    yield e
    for p in e.params.values():
      for sub in (p if isinstance(p, (tuple, list)) else (p,)):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _eqns(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _eqns(sub)


def dense_ops(module, variables, batch: int) -> collections.Counter:
  """-> Counter of op keys: ("conv", x_shape, k_shape, strides, padding) for NHWC/HWIO
  convs with one group and no dilation, ("dot", (M, K), (K, N)) for x @ W."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  x = jax.ShapeDtypeStruct((batch, 48, 320, 3), jnp.float32)
  closed = jax.make_jaxpr(lambda v, x: module.apply(v, x, train=False)["ctc_logits"])(
      variables, x)
  ops: collections.Counter = collections.Counter()
  for e in _eqns(closed.jaxpr):
    shapes = [tuple(v.aval.shape) for v in e.invars]
    p = e.params
    if e.primitive.name == "conv_general_dilated":
      dn = p["dimension_numbers"]
      if (p["feature_group_count"] == 1 and p["batch_group_count"] == 1
          and set(p["lhs_dilation"]) == {1} and set(p["rhs_dilation"]) == {1}
          and (tuple(dn.lhs_spec), tuple(dn.rhs_spec)) == ((0, 3, 1, 2), (3, 2, 0, 1))):
        ops[("conv", shapes[0], shapes[1], tuple(p["window_strides"]),
             tuple(tuple(q) for q in p["padding"]))] += 1
    elif e.primitive.name == "dot_general" and len(shapes[1]) == 2:
      (lc, rc), (lb, rb) = p["dimension_numbers"]
      if tuple(lc) == (len(shapes[0]) - 1,) and tuple(rc) == (0,) and not lb and not rb:
        ops[("dot", (int(np.prod(shapes[0][:-1])), shapes[0][-1]), shapes[1])] += 1
  return ops


def depthwise_ops(module, variables, batch: int) -> collections.Counter:
  """-> Counter of ("dw", x_shape, (kh, kw), strides, padding): the native depthwise convs
  of the forward at [batch, 48, 320, 3] (needs the native kernel in use)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec.runtime import native_depthwise  # pylint: disable=g-import-not-at-top

  x = jax.ShapeDtypeStruct((batch, 48, 320, 3), jnp.float32)
  closed = jax.make_jaxpr(lambda v, x: module.apply(v, x, train=False)["ctc_logits"])(
      variables, x)
  ops: collections.Counter = collections.Counter()
  for e in _eqns(closed.jaxpr):
    if e.primitive.name == "ffi_call" and e.params["target_name"] == native_depthwise.TARGET:
      a = dict(e.params["attributes"])
      ops[("dw", tuple(e.invars[0].aval.shape), tuple(e.invars[1].aval.shape[:2]),
           (int(a["sh"]), int(a["sw"])), (int(a["ph"]), int(a["pw"])))] += 1
  return ops


def dw_runners(op) -> dict:
  """The four ways to run depthwise op `op` (depthwise_ops) -> {name: run()}."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  from onnx import TensorProto, helper, numpy_helper  # pylint: disable=g-import-not-at-top

  from textrec.runtime import xla_cpu  # pylint: disable=g-import-not-at-top
  from textrec.models import layers
  from textrec.runtime import settings
  from textrec.runtime import native_depthwise  # pylint: disable=g-import-not-at-top

  _, xs, (kh, kw), strides, pad = op
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(xs, np.float32))
  k = jnp.asarray(rng.standard_normal((kh, kw, xs[3]), np.float32) * 0.1)
  none = jnp.zeros((0, xs[3]), jnp.float32)
  runs = {}
  with settings.native_kernels_off():  # XLA's form
    for v, opts in xla_cpu.VARIANTS.items():
      c = jax.jit(lambda x, k: layers.depthwise_multi(x, k[None], none, strides, pad)[0]).lower(
          x, k).compile(compiler_options=opts)
      runs[f"xla-{v}"] = lambda c=c: c(x, k).block_until_ready()
  c = jax.jit(lambda x, k: native_depthwise.depthwise_conv(x, k, strides, pad)).lower(
      x, k).compile()
  runs["native"] = lambda: c(x, k).block_until_ready()
  b, h, w, ch = xs
  node = helper.make_node("Conv", ["x", "k"], ["y"], strides=list(strides), group=ch,
                          pads=[pad[0], pad[1], pad[0], pad[1]])
  init = numpy_helper.from_array(np.ascontiguousarray(
      np.asarray(k).transpose(2, 0, 1)[:, None]), "k")
  graph = helper.make_graph([node], "dw", [helper.make_tensor_value_info(
      "x", TensorProto.FLOAT, [b, ch, h, w])], [helper.make_tensor_value_info(
          "y", TensorProto.FLOAT, None)], [init])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
  sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
  xn = np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))
  runs["ort"] = lambda: sess.run(None, {"x": xn})
  return runs


def bench_depthwise(models: list[str], batch: int, repeats: int, min_time: float) -> int:
  from textrec.runtime import xla_cpu  # pylint: disable=g-import-not-at-top
  from textrec.runtime import native_depthwise  # pylint: disable=g-import-not-at-top

  if not native_depthwise.available():
    print("the native depthwise kernel is not in use here (textrec.runtime.native_depthwise)")
    return 1
  cols = [f"xla-{v}" for v in xla_cpu.VARIANTS] + ["native", "ort"]
  print(f"{time.strftime('%Y-%m-%d')}, {xla_cpu.cpu_model()}, {os.cpu_count()} CPUs, "
        f"batch {batch}; depthwise convs, GFLOP/s (median of {repeats})")
  for name in models:
    module, variables = weights(name, None)[:2]
    ops = depthwise_ops(module, variables, batch)
    if not ops:
      print(f"\n{name}: no depthwise convs")
      continue
    print(f"\n{name}: {len(ops)} distinct depthwise convs, {sum(ops.values())} calls\n"
          f"  {'op':36s} {'calls':>5} {'GFLOP':>6} " + " ".join(f"{c:>11}" for c in cols))
    summed = {c: 0.0 for c in cols}
    for op in sorted(ops, key=lambda o: -gflop(o) * ops[o]):
      med = alternating_medians(dw_runners(op), repeats, min_time, 3)
      for c in cols:
        summed[c] += med[c] * ops[op]
      desc = (f"dw {'x'.join(map(str, op[1]))} k{op[2][0]}x{op[2][1]}"
              + (f" s{op[3][0]}{op[3][1]}" if op[3] != (1, 1) else ""))
      print(f"  {desc:36s} {ops[op]:5d} {gflop(op):6.3f} " +
            " ".join(f"{gflop(op) / med[c]:11.1f}" for c in cols), flush=True)
    print("  sum of these convs, ms per batch: " +
          ", ".join(f"{c} {1e3 * v:.1f}" for c, v in summed.items()))
  return 0


def gflop(op) -> float:
  if op[0] == "dot":
    (m, k), (_, n) = op[1], op[2]
    return 2 * m * k * n / 1e9
  if op[0] == "dw":
    (b, h, w, c), (kh, kw), (sh, sw), (ph, pw) = op[1:]
    return 2 * b * ((h + 2 * ph - kh) // sh + 1) * ((w + 2 * pw - kw) // sw + 1) * kh * kw * c / 1e9
  (b, h, w, _), (kh, kw, ci, co), (sh, sw), ((pt, pb), (pl, pr)) = op[1:]
  ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
  return 2 * b * ho * wo * kh * kw * ci * co / 1e9


def xla_runner(op, options: dict):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(op[1], np.float32))
  k = jnp.asarray(rng.standard_normal(op[2], np.float32) * 0.05)
  if op[0] == "dot":
    f = lambda x, k: x @ k  # noqa: E731
  else:
    f = lambda x, k: jax.lax.conv_general_dilated(  # noqa: E731
        x, k, op[3], op[4], dimension_numbers=("NHWC", "HWIO", "NHWC"))
  c = jax.jit(f).lower(x, k).compile(compiler_options=options)
  return lambda: c(x, k).block_until_ready()


def ort_runner(op):
  import onnx  # pylint: disable=g-import-not-at-top
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  from onnx import TensorProto, helper, numpy_helper  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  k = rng.standard_normal(op[2], np.float32) * 0.05
  if op[0] == "dot":
    xs = op[1]
    node = helper.make_node("MatMul", ["x", "k"], ["y"])
    init = numpy_helper.from_array(k, "k")
  else:
    b, h, w, c = op[1]
    xs = (b, c, h, w)
    (pt, pb), (pl, pr) = op[4]
    node = helper.make_node("Conv", ["x", "k"], ["y"], strides=list(op[3]),
                            pads=[pt, pl, pb, pr])
    init = numpy_helper.from_array(np.ascontiguousarray(k.transpose(3, 2, 0, 1)), "k")
  graph = helper.make_graph([node], "op", [helper.make_tensor_value_info(
      "x", TensorProto.FLOAT, list(xs))], [helper.make_tensor_value_info(
          "y", TensorProto.FLOAT, None)], [init])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
  sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
  x = rng.standard_normal(xs, np.float32)
  return lambda: sess.run(None, {"x": x})


def alternating_medians(runs: dict, repeats: int, min_time: float, min_calls: int) -> dict:
  """{key: run()} -> {key: median seconds per call}: `repeats` rounds, each timing every run
  in turn (one warm-up call, then at least `min_calls` calls and `min_time` seconds)."""
  times = {key: [] for key in runs}
  for _ in range(repeats):
    for key, run in runs.items():
      run()
      n, t = 0, time.perf_counter()
      while n < min_calls or time.perf_counter() - t < min_time:
        run()
        n += 1
      times[key].append((time.perf_counter() - t) / n)
  return {key: statistics.median(v) for key, v in times.items()}


# (tokens, heads, head dim, where): the attention shapes of the four recognizers at 48x320.
ATTENTION = ((40, 8, 15, "mobile/server neck"), (40, 8, 32, "SVTRv2/RepSVTR neck"),
             (480, 8, 32, "SVTRv2 stage 2"), (240, 12, 32, "SVTRv2 stage 3"))


def attention_forms() -> dict:
  """name -> fn(q, k, v), each [B, h, N, hd] -> [B, h, N, hd]."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec.models import svtr_neck  # pylint: disable=g-import-not-at-top

  def attend(q, k, v):  # [..., N, hd]
    return jnp.einsum("...qk,...kd->...qd",
                      jax.nn.softmax(jnp.einsum("...qd,...kd->...qk", q, k), axis=-1), v)

  def per_head(q, k, v):
    b, h, n, d = q.shape
    flat = lambda t: t.reshape(b * h, n, d)  # noqa: E731
    return jax.lax.map(lambda t: attend(*t), (flat(q), flat(k), flat(v))).reshape(b, h, n, d)
  return {"batched": attend, "per image": svtr_neck._attend_per_image,  # pylint: disable=protected-access
          "per (image, head)": per_head}


def bench_attention(repeats: int, min_time: float) -> None:
  import jax  # pylint: disable=g-import-not-at-top

  from textrec.runtime import xla_cpu  # pylint: disable=g-import-not-at-top

  forms = attention_forms()
  print(f"{time.strftime('%Y-%m-%d')}, {xla_cpu.cpu_model()}, {os.cpu_count()} CPUs; SVTR "
        f"attention, microseconds per image (median of {repeats}), XLA:CPU default / ynn_off")
  print(f"  {'shape':34s} {'B':>2} " + " ".join(f"{n:>20}" for n in forms))
  for n, h, d, where in ATTENTION:
    for b in (1, 6):
      rng = np.random.default_rng(0)
      q, k, v = (rng.standard_normal((b, h, n, d), np.float32) * 0.3 for _ in range(3))
      runs = {}
      for name, f in forms.items():
        for variant, opts in xla_cpu.VARIANTS.items():
          c = jax.jit(f).lower(q, k, v).compile(compiler_options=opts)
          runs[(name, variant)] = lambda c=c: c(q, k, v).block_until_ready()
      us = {key: 1e6 * v / b
            for key, v in alternating_medians(runs, repeats, min_time, 5).items()}
      print(f"  {where + f' N={n} h={h} d={d}':34s} {b:>2} " + " ".join(
          f"{us[(f, 'default')]:>9.0f} / {us[(f, 'ynn_off')]:<8.0f}" for f in forms), flush=True)


def bench_peak(models: list[str], repeats: int, min_time: float) -> None:
  """The machine's float32 matmul rate at a large size (numpy's BLAS and XLA:CPU's dot), and
  each model's forward at that rate: a floor no float32 runtime goes below."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec.runtime import xla_cpu  # pylint: disable=g-import-not-at-top

  n = 2048
  rng = np.random.default_rng(0)
  a, b = (rng.standard_normal((n, n), np.float32) for _ in range(2))
  runs = {"numpy": lambda: a @ b}
  ja, jb = jnp.asarray(a), jnp.asarray(b)
  for v, opts in xla_cpu.VARIANTS.items():
    c = jax.jit(lambda x, y: x @ y).lower(ja, jb).compile(compiler_options=opts)
    runs[f"xla-{v}"] = lambda c=c: c(ja, jb).block_until_ready()
  med = alternating_medians(runs, repeats, min_time, 3)
  rate = {k: 2 * n ** 3 / t / 1e9 for k, t in med.items()}
  peak = max(rate.values())
  print(f"{time.strftime('%Y-%m-%d')}, {xla_cpu.cpu_model()}, {os.cpu_count()} CPUs; float32 "
        f"{n}x{n} @ {n}x{n}, GFLOP/s (median of {repeats}): " +
        ", ".join(f"{k} {r:.0f}" for k, r in rate.items()))
  for name in models:
    module, variables = weights(name, None)[:2]
    gf = forward_gflop(module, variables, 1)  # batch 1: the per-image attention of larger
    # batches is a loop, whose body the cost analysis counts once
    print(f"  {name:22s} {gf:6.2f} GFLOP/img (XLA's cost analysis): {1e3 * gf / peak:6.1f} "
          f"ms/img at {peak:.0f} GFLOP/s")


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--batch", type=int, default=6)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--attention", action="store_true",
                  help="time the SVTR attention's three forms instead")
  ap.add_argument("--depthwise", action="store_true",
                  help="time the depthwise convs: XLA's form, the native kernel, onnxruntime")
  ap.add_argument("--peak", action="store_true",
                  help="time a large float32 matmul and put each model's FLOPs at that rate")
  ap.add_argument("--min_time", type=float, default=0.3, help="seconds per runtime per round")
  args = ap.parse_args()
  if args.peak:
    bench_peak([m for m in args.models.split(",") if m], args.repeats, args.min_time)
    return 0
  if args.depthwise:
    return bench_depthwise([m for m in args.models.split(",") if m], args.batch, args.repeats,
                           args.min_time)
  if args.attention:
    bench_attention(args.repeats, args.min_time)
    return 0
  from textrec.runtime import xla_cpu  # pylint: disable=g-import-not-at-top

  cols = [f"xla-{v}" for v in xla_cpu.VARIANTS] + ["ort"]
  print(f"{time.strftime('%Y-%m-%d')}, {xla_cpu.cpu_model()}, {os.cpu_count()} CPUs, "
        f"batch {args.batch}; GFLOP/s (median of {args.repeats})")
  for name in [m for m in args.models.split(",") if m]:
    module, variables = weights(name, None)[:2]
    ops = dense_ops(module, variables, args.batch)
    total_gf = forward_gflop(module, variables, args.batch)
    print(f"\n{name}: {len(ops)} distinct dense ops, {sum(ops.values())} calls\n"
          f"  {'op':44s} {'calls':>5} {'GFLOP':>6} " + " ".join(f"{c:>11}" for c in cols))
    summed = {c: 0.0 for c in cols}
    for op in sorted(ops, key=lambda o: -gflop(o) * ops[o]):
      runners = {f"xla-{v}": xla_runner(op, o) for v, o in xla_cpu.VARIANTS.items()}
      runners["ort"] = ort_runner(op)
      med = alternating_medians(runners, args.repeats, args.min_time, 3)
      for c in cols:
        summed[c] += med[c] * ops[op]
      desc = (f"dot {op[1][0]}x{op[1][1]} @ {op[2][1]}" if op[0] == "dot" else
              f"conv {'x'.join(map(str, op[1]))} k{op[2][0]}x{op[2][1]}->{op[2][3]}"
              + (f" s{op[3][0]}{op[3][1]}" if op[3] != (1, 1) else ""))
      print(f"  {desc:44s} {ops[op]:5d} {gflop(op):6.2f} " +
            " ".join(f"{gflop(op) / med[c]:11.1f}" for c in cols), flush=True)
    dense_gf = sum(gflop(o) * n for o, n in ops.items())
    print(f"  sum of these kernels, ms per batch: " +
          ", ".join(f"{c} {1e3 * v:.1f}" for c, v in summed.items()) +
          f"; {dense_gf:.2f} GFLOP per batch in these kernels, counting the padded border's "
          f"products; the whole forward {total_gf:.2f} by XLA's cost analysis, which skips them")
  return 0


if __name__ == "__main__":
  sys.exit(main())
