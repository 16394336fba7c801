"""Inference speed: our jit-compiled predict vs onnxruntime on the official ONNX.

In one process, on the same decoded IC15 val crops (BGR arrays in memory, so disk reads are
not timed), ms/img at each batch size for
  * ours: `create_model("PP-OCRv4_mobile_rec").predict(images, batch_size=B)` (preprocess,
    jitted forward, CTC decode; compiles are done in a warm-up pass first);
  * ort:  PaddleX's pipeline with onnxruntime: chunks of B sorted by aspect ratio, each
    padded to the chunk's widest, the official ONNX, the same CTC decode;
and the raw forward alone on a fixed [B, 3, 48, 320] batch. Prints ratios ours / ort.
Then the deploy-form forward of every registered recognizer (`--models`) at [B, 3, 48, 320]
(random weights: the compute does not depend on their values), ms/img, next to the mobile
model's onnxruntime time as the common yardstick.

  .venv/bin/python scripts/bench_infer.py [--n 300] [--batch_sizes 1,6] [--threads 2] \
      [--models PP-OCRv4_server_rec,ch_SVTRv2_rec,ch_RepSVTR_rec]
"""
from __future__ import annotations

import argparse
import math
import os
import pathlib
import statistics
import sys
import time

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textrec.inference import jax_backend, postprocess, predictor, preprocess  # noqa: E402
from textrec.weights import official  # noqa: E402

MODEL = "PP-OCRv4_mobile_rec"


def load_images(ic15: pathlib.Path, n: int) -> list[np.ndarray]:
  lines = (ic15 / "val.txt").read_text(encoding="utf-8").splitlines()[:n]
  return [cv2.imread(str(ic15 / ln.split("\t")[0]), cv2.IMREAD_COLOR) for ln in lines]


def ort_predict(sess, images: list[np.ndarray], bs: int, chars) -> list[tuple[str, float]]:
  """PaddleX's batching: sort by aspect ratio, pad each batch to its widest (>= 320)."""
  name = sess.get_inputs()[0].name
  order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
  out: list = [None] * len(images)
  for s in range(0, len(order), bs):
    idx = order[s:s + bs]
    ratio = max([preprocess.MIN_WIDTH / preprocess.HEIGHT] +
                [images[i].shape[1] / images[i].shape[0] for i in idx])
    width = min(int(math.ceil(preprocess.HEIGHT * ratio)), preprocess.MAX_WIDTH)
    x = np.stack([preprocess.resize_norm(images[i], width) for i in idx]).transpose(0, 3, 1, 2)
    probs = sess.run(None, {name: np.ascontiguousarray(x)})[0]
    for i, r in zip(idx, postprocess.ctc_greedy_decode(probs, chars)):
      out[i] = r
  return out


def timed(fn, repeats: int) -> float:
  """Median wall seconds of `repeats` calls."""
  ts = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    ts.append(time.perf_counter() - t)
  return statistics.median(ts)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--ic15", default=str(REPO.parent / "shared" / "data" / "ic15_rec"))
  ap.add_argument("--n", type=int, default=300, help="val crops timed")
  ap.add_argument("--batch_sizes", default="1,6")
  ap.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                  help="onnxruntime intra-op threads (XLA uses all cores)")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--models", default="PP-OCRv4_server_rec,ch_SVTRv2_rec,ch_RepSVTR_rec",
                  help="other recognizers whose forward is timed ('' for none)")
  args = ap.parse_args()
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  ic15 = pathlib.Path(args.ic15)
  if not (ic15 / "val.txt").is_file():
    print(f"{ic15}/val.txt not found (pass --ic15=DIR)", file=sys.stderr)
    return 2
  images = load_images(ic15, args.n)
  model = predictor.create_model(MODEL)
  so = ort.SessionOptions()
  so.intra_op_num_threads = args.threads
  so.inter_op_num_threads = 1
  sess = ort.InferenceSession(official.official_onnx_path(MODEL), so,
                              providers=["CPUExecutionProvider"])
  chars = model.charset
  print(f"{len(images)} IC15 val crops, {os.cpu_count()} CPUs, ort threads {args.threads}, "
        f"median of {args.repeats}")
  print(f"{'':>22} {'ours ms/img':>12} {'ort ms/img':>11} {'ratio':>7}")
  ort_ms: dict[int, float] = {}
  for bs in [int(b) for b in args.batch_sizes.split(",")]:
    ours = list(model.predict(images, batch_size=bs))  # warm-up: compiles every shape
    ref = ort_predict(sess, images, bs, chars)
    t_ours = timed(lambda: list(model.predict(images, batch_size=bs)), args.repeats)
    t_ort = timed(lambda: ort_predict(sess, images, bs, chars), args.repeats)
    same = sum(o.rec_text == r[0] for o, r in zip(ours, ref))
    n = len(images)
    print(f"predict  batch {bs:>3}     {1e3 * t_ours / n:12.2f} {1e3 * t_ort / n:11.2f} "
          f"{t_ours / t_ort:7.2f}   (same text {same}/{n})")
    x = np.random.default_rng(0).uniform(-1, 1, (bs, 3, 48, 320)).astype(np.float32)
    model.forward(x)
    name = sess.get_inputs()[0].name
    reps = max(3, 60 // bs)
    f_ours = timed(lambda: model.forward(x), reps)
    f_ort = timed(lambda: sess.run(None, {name: x}), reps)
    print(f"forward  [{bs},3,48,320] {1e3 * f_ours / bs:12.2f} {1e3 * f_ort / bs:11.2f} "
          f"{f_ours / f_ort:7.2f}")
    ort_ms[bs] = 1e3 * f_ort / bs
  for name in [m for m in args.models.split(",") if m]:
    fwd = random_forward(name, chars.num_classes)
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
      x = np.random.default_rng(0).uniform(-1, 1, (bs, 3, 48, 320)).astype(np.float32)
      fwd(x)  # compile
      f = timed(lambda: fwd(x), max(3, 30 // bs))
      print(f"{name:>20} forward [{bs},3,48,320] {1e3 * f / bs:8.2f} ms/img "
            f"({1e3 * f / bs / ort_ms[bs]:.2f}x mobile on ort)")
  return 0


def random_forward(name: str, num_classes: int):
  """The deploy-form inference forward of `name` with random weights (as the predictor runs
  it: NCHW in, probabilities out)."""
  import jax  # pylint: disable=g-import-not-at-top

  from textrec.models import recognizer, zoo  # pylint: disable=g-import-not-at-top

  train = jax_backend.flax_module(name, num_classes, False)
  v = recognizer.init_variables(train, jax.random.PRNGKey(0), with_nrtr=False)
  deploy = jax_backend.flax_module(name, num_classes, True)
  fwd = jax_backend.FlaxForward(deploy, zoo.to_deploy(name, v))
  return lambda x_nchw: fwd(x_nchw.transpose(0, 2, 3, 1))


if __name__ == "__main__":
  sys.exit(main())
