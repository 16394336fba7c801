"""One table: every recognizer on every runtime at hand, same process, same inputs.

For each model (`--models`) and batch size (`--batch_sizes`, default 1 and 6) at
[B, 3, 48, 320], ms/img (the fastest of `--repeats` rounds, the runtimes alternating within
each round: on this shared machine the same program timed twice in one run of this bench
differed by 20-30 %, bursts of slowness that a median of few rounds still catches) for
  * textrec   our jitted deploy-form forward (what create_model runs), and its first call
              (compile, or a load from the persistent cache) in its own column; the XLA:CPU
              kernels it uses (textrec.runtime.xla_cpu: measured on first use) are printed
              under the row, and `--compare_libs` adds a column per variant, forced;
  * ort-ours  onnxruntime on textrec's own export of the same weights (cached in --cache);
  * ov-ours   OpenVINO (f32) on that export as `backend="openvino"` runs it
              (textrec.inference.runtimes: one model compiled with dynamic batch and width,
              an infer request per thread), if `openvino` is installed;
  * ort-off   onnxruntime on the official ONNX, for every model that has one
              (textrec/formats/official_files.py: v4 / v5 mobile, v6 small / tiny);
  * openvino  OpenVINO on the official ONNX (where textrec runs the official weights) / our
              export, if `openvino` is installed,
              with f32 arithmetic (INFERENCE_PRECISION_HINT=f32); where its default
              precision on this CPU is lower (bf16 on CPUs with AVX512_BF16 or AMX),
              `ov-bf16` adds it at its defaults — a different computation (its outputs
              differ, by 5e-2 in a probability for mobile on one AVX512_BF16 machine), shown
              but not a reference for the ratio;
  * paddle    Paddle Inference on a Paddle inference directory, if `paddlepaddle` is
              installed (`--paddle_dirs name=DIR,...`; the mobile and RepSVTR directories of
              ../shared/fixtures/paddle_infer by default), with that directory's own weights;
              its outputs are checked against textrec reading the same directory.
Every reference runs at its defaults (onnxruntime: its default thread count; Paddle: CPU,
oneDNN as configured by default). Weights: see below; the others random
deploy-form weights (the compute does not depend on the values) unless `--weights
name=DIR` names a directory create_model reads. Weights: the official ones for every model
that has an official ONNX (imported from it); where that import fails, random ones, said so,
and ort-off is then timed but not compared. Column `ratio` is textrec / the fastest
reference, `ov/ort` ov-ours / ort-ours (below 1: OpenVINO faster on textrec's export); under
each model, what `backend="auto"` chooses for that export on this machine (timed once per
machine and recorded: textrec.inference.auto_backend; `--no_auto` skips it), its GFLOP per
image and the GFLOP/s that textrec and the fastest reference reach (scripts/bench_kernels.py
times the dense kernels alone). Each round
runs the runtimes in a rotated order, each after a warm-up call and a `--pause`: OpenMP
(Paddle's) and OpenVINO's threads keep spinning after a call and slowed whichever runtime ran
next (textrec, first in every round before this, ran RepSVTR at batch 1 25-30 % slower than
the same program timed later in the round). Paddle's threads spin for long: for clean
figures of the others, run again with `--paddle_dirs ""`.

  .venv/bin/python scripts/bench_runtimes.py [--models ...] [--batch_sizes 1,6] [--repeats 5]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import pathlib
import platform
import sys
import time
import warnings

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textrec.formats import inference_yml, official_files  # noqa: E402
from textrec.inference import jax_backend, openvino_backend, predictor, runtimes  # noqa: E402
from textrec.runtime import compile_cache  # noqa: E402

MODELS = ("PP-OCRv4_mobile_rec", "PP-OCRv4_server_rec", "ch_SVTRv2_rec", "ch_RepSVTR_rec",
          "PP-OCRv5_mobile_rec", "PP-OCRv5_server_rec", "PP-OCRv6_tiny_rec",
          "PP-OCRv6_small_rec", "PP-OCRv6_medium_rec")
FIXTURES = REPO.parent / "shared" / "fixtures" / "paddle_infer"


def _pairs(s: str) -> dict[str, str]:
  return dict(p.split("=", 1) for p in s.split(",") if p)


def weights(name: str, model_dir: str | None):
  """-> (deploy module, deploy variables, charset, description): model_dir's, else the
  official ones where the model has an official ONNX, else (or when their import fails)
  random ones."""
  import jax  # pylint: disable=g-import-not-at-top

  from textrec import errors  # pylint: disable=g-import-not-at-top
  from textrec.export import export  # pylint: disable=g-import-not-at-top
  from textrec.models import recognizer, zoo  # pylint: disable=g-import-not-at-top
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  if model_dir:
    return export.load_weights(name, model_dir)
  if name in official_files.names("rec"):
    try:
      return export.load_weights(name)
    except (errors.TextrecError, ValueError, KeyError) as e:
      print(f"  {name}: official weights not imported ({str(e).splitlines()[0][:160]}); "
            "random ones instead", file=sys.stderr)
  cs = official.default_charset()
  train = jax_backend.flax_module(name, cs.num_classes, False)
  v = recognizer.init_variables(train, jax.random.PRNGKey(0), with_nrtr=False)
  module = export.inference_module(name, cs.num_classes)
  return module, export.fit_variables(module, zoo.to_deploy(name, v)), cs, "random weights"


def forward_gflop(module, variables, batch: int = 1) -> float:
  """GFLOP of the forward at [batch, 48, 320, 3] by XLA's cost analysis of the program."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec.runtime import settings  # pylint: disable=g-import-not-at-top

  x = jnp.zeros((batch, 48, 320, 3), jnp.float32)
  with settings.native_kernels_off():  # XLA's cost analysis counts no custom call's FLOPs
    cost = jax.jit(lambda v, x: module.apply(v, x, train=False)["ctc_logits"]).lower(
        variables, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0)) / 1e9


def our_export(name: str, module, variables, cs, cache: pathlib.Path, src: str) -> str:
  from textrec.export import export  # pylint: disable=g-import-not-at-top

  # one cached export per model and weights (official, random or a directory's)
  out = cache / f"{name}-{hashlib.sha1(src.encode()).hexdigest()[:10]}"
  if not (out / inference_yml.ONNX_FILE).is_file():
    print(f"  exporting {name} to ONNX (once; cached in {out}) ...", file=sys.stderr)
    export.export(name, module, variables, cs, str(out), "onnx", source=src)
  return str(out / inference_yml.ONNX_FILE)


def forced_runner(module, variables, libs: str):
  """textrec's forward compiled with XLA:CPU kernel variant `libs` (xla_cpu.VARIANTS)."""
  from textrec.runtime import settings  # pylint: disable=g-import-not-at-top

  fwd = jax_backend.FlaxForward(module, variables)

  def run(x):
    old = settings.get().xla_cpu_libs
    settings.configure(xla_cpu_libs=libs)  # read when a shape compiles (or loads) first
    try:
      return fwd(x.transpose(0, 2, 3, 1))
    finally:
      settings.configure(xla_cpu_libs=old)
  return run


def ort_runner(path: str):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])  # default threads
  name = sess.get_inputs()[0].name
  return lambda x: sess.run(None, {name: x})[0]


def openvino_runner(path: str, precision: str | None = None):
  """OpenVINO's CPU plugin; `precision` None = its default, else INFERENCE_PRECISION_HINT."""
  ov = openvino_backend.openvino_module()
  cfg = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
  compiled = ov.Core().compile_model(path, "CPU", cfg)
  return lambda x: compiled(x)[0]


def openvino_default_precision() -> str:
  """'f32', 'bf16', 'f16', ...: what OpenVINO's CPU plugin computes in when not told."""
  ov = openvino_backend.openvino_module()
  return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def paddle_runner(model_dir: str):
  import paddle.inference as pi  # pylint: disable=g-import-not-at-top

  d = pathlib.Path(model_dir)
  prog = d / "inference.json" if (d / "inference.json").is_file() else d / "inference.pdmodel"
  cfg = pi.Config(str(prog), str(d / "inference.pdiparams"))
  cfg.disable_gpu()
  cfg.disable_glog_info()  # its pass-by-pass log off
  pred = pi.create_predictor(cfg)
  inp = pred.get_input_handle(pred.get_input_names()[0])
  out = pred.get_output_handle(pred.get_output_names()[0])

  seen = set()

  def run(x):
    inp.reshape(x.shape)
    inp.copy_from_cpu(x)
    if x.shape in seen:
      pred.run()
    else:  # its oneDNN passes print to stdout the first time a shape runs
      seen.add(x.shape)
      with _stdout_to_devnull():
        pred.run()
    return out.copy_to_cpu()
  return run


@contextlib.contextmanager
def _stdout_to_devnull():
  """File descriptor 1 to /dev/null (what C++ libraries print there, too)."""
  sys.stdout.flush()
  saved = os.dup(1)
  with open(os.devnull, "w", encoding="utf-8") as null:
    os.dup2(null.fileno(), 1)
  try:
    yield
  finally:
    os.dup2(saved, 1)
    os.close(saved)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--batch_sizes", default="1,6")
  ap.add_argument("--repeats", type=int, default=5,
                  help="rounds; each times every runtime; the fastest round counts")
  ap.add_argument("--min_time", type=float, default=1.0, help="seconds per runtime per round")
  ap.add_argument("--pause", type=float, default=0.3,
                  help="idle seconds before each runtime's turn (spinning threads settle)")
  ap.add_argument("--compare_libs", action="store_true",
                  help="also time textrec with each XLA:CPU kernel variant forced")
  ap.add_argument("--weights", default="", help="name=DIR,... (default: see the docstring)")
  ap.add_argument("--no_auto", action="store_true",
                  help="skip backend auto's choice for textrec's export (module doc)")
  ap.add_argument("--paddle_dirs",
                  default=",".join(f"{m}={FIXTURES / m}" for m in ("PP-OCRv4_mobile_rec",
                                                                  "ch_RepSVTR_rec")))
  ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "textrec",
                                                  "bench_runtimes"))
  args = ap.parse_args()
  from textrec import cli  # pylint: disable=g-import-not-at-top
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  cli.quiet_logs(debug=False)  # the exporter's INFO lines off, as in the CLI

  compile_cache.enable()
  given, pdirs = _pairs(args.weights), _pairs(args.paddle_dirs)
  batches = [int(b) for b in args.batch_sizes.split(",")]
  cache = pathlib.Path(args.cache)
  have = {}
  for mod in ("openvino", "paddle"):
    try:
      with warnings.catch_warnings():  # paddle's import warns that it found no ccache
        warnings.simplefilter("ignore")
        __import__(mod)
      have[mod] = True
    except ImportError:
      have[mod] = False
  ov_default = openvino_default_precision() if have["openvino"] else "f32"
  print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; openvino "
        f"{f'yes (default precision {ov_default})' if have['openvino'] else 'not installed'}, "
        f"paddle {'yes' if have['paddle'] else 'not installed'}; fastest of {args.repeats} "
        "rounds")
  from textrec.runtime import programs, xla_cpu  # pylint: disable=g-import-not-at-top

  variants = [f"jax-{v}" for v in xla_cpu.VARIANTS] if args.compare_libs else []
  lower = [f"ov-{ov_default}"] if ov_default != "f32" else []  # not f32: not a reference
  cols = ("textrec", *variants, "ort-ours", "ov-ours", "ort-off", "openvino", *lower, "paddle")
  print(f"{'model':22s} {'B':>2} {'first call s':>12} " +
        " ".join(f"{c:>9}" for c in cols) + f" {'ratio':>6} {'ov/ort':>6}  (ms/img)")
  for name in [m for m in args.models.split(",") if m]:
    module, variables, cs, src = weights(name, given.get(name))
    onnx_ours = our_export(name, module, variables, cs, cache, src)
    fwd = jax_backend.FlaxForward(module, variables)
    runners = {"textrec": lambda x, f=fwd: f(x.transpose(0, 2, 3, 1)),
               **{c: forced_runner(module, variables, c[4:]) for c in variants},
               "ort-ours": ort_runner(onnx_ours)}
    ref_onnx = onnx_ours
    timed_only = set()  # runtimes on other weights than textrec's: timed, not compared
    if name in official_files.names("rec"):
      runners["ort-off"] = ort_runner(official.official_onnx_path(name))
      if src.startswith("official"):
        ref_onnx = official.official_onnx_path(name)
      else:
        timed_only.add("ort-off")
    if have["openvino"]:
      runners["ov-ours"] = runtimes.runner(onnx_ours, "openvino", "f32")
      runners["openvino"] = openvino_runner(ref_onnx, "f32")
      for c in lower:
        runners[c] = openvino_runner(ref_onnx)
    same_weights = {}  # runtime -> textrec on that runtime's weights, where they differ
    if have["paddle"] and name in pdirs:
      runners["paddle"] = paddle_runner(pdirs[name])
      p_module, p_variables = weights(name, pdirs[name])[:2]
      p_fwd = jax_backend.FlaxForward(p_module, p_variables)
      same_weights["paddle"] = lambda x, f=p_fwd: f(x.transpose(0, 2, 3, 1))
    gf, rates = forward_gflop(module, variables), {}
    for b in batches:
      x = np.random.default_rng(b).uniform(-1, 1, (b, 3, 48, 320)).astype(np.float32)
      t0 = time.perf_counter()
      ref = runners["textrec"](x)
      first = time.perf_counter() - t0
      for k, run in runners.items():
        if k in timed_only:
          run(x)
          continue
        d = float(np.abs(np.asarray(run(x)) - (same_weights[k](x) if k in same_weights
                                                else ref)).max())
        if d > 1e-3 and k not in lower:
          print(f"  warning: {k} differs from textrec by {d:.1e}", file=sys.stderr)
        elif k in lower:
          print(f"  {k} (OpenVINO's default precision) differs from textrec by {d:.1e}",
                file=sys.stderr)
      times: dict[str, list[float]] = {k: [] for k in runners}
      keys = list(runners)
      for r in range(args.repeats):
        # Each round in a rotated order, and a pause before each runtime: some keep their
        # threads spinning after a call (OpenMP, OpenVINO's), slowing whatever runs next.
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
          run = runners[k]
          time.sleep(args.pause)
          run(x)
          n, t = 0, time.perf_counter()
          while n < 3 or time.perf_counter() - t < args.min_time:
            run(x)
            n += 1
          times[k].append((time.perf_counter() - t) / n / b)
      ms = {k: 1e3 * min(v) for k, v in times.items()}
      best = min(v for k, v in ms.items()
                 if k != "textrec" and k not in variants and k not in lower)
      print(f"{name:22s} {b:>2} {first:12.2f} " +
            " ".join(f"{ms[c]:9.2f}" if c in ms else f"{'-':>9}" for c in cols) +
            f" {ms['textrec'] / best:6.2f}" +
            (f" {ms['ov-ours'] / ms['ort-ours']:6.2f}" if "ov-ours" in ms else f" {'-':>6}"),
            flush=True)
      rates[b] = (1e3 * gf / ms["textrec"], 1e3 * gf / best)
    print(f"  {name}: {gf:.2f} GFLOP/img (XLA's cost analysis); GFLOP/s textrec vs the fastest "
          "reference: " + ", ".join(f"B={b} {r[0]:.0f} vs {r[1]:.0f}" for b, r in rates.items()),
          flush=True)
    libs = {xla_cpu.batch_class(b): xla_cpu.choice(programs.libs_key(fwd.tag, fwd.variables, b),
                                                    programs.cache_dir()) for b in batches}
    print(f"  textrec's XLA:CPU kernels for {name}: " +
          ", ".join(f"{k}: {v}" for k, v in libs.items()), flush=True)
    if not args.no_auto:  # what create_model(..., backend="auto") runs this export on
      auto = predictor.create_model(name, model_dir=os.path.dirname(onnx_ours), backend="auto")
      print(f"  backend auto for textrec's export of {name}: {auto.backend} "
            f"({auto.precision})", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
