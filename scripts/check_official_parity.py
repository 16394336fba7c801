"""Official PP-OCRv4 mobile rec: our Flax deploy model vs the official ONNX in onnxruntime.

Runs the whole ic15 val set (../shared/data/ic15_rec) through both, each crop preprocessed by
`textrec.inference.preprocess.resize_norm` and padded to its own bucket width (`predict_width`),
batched by equal width, and prints max |dprob|, how many texts are identical, both
accuracies (PaddleOCR's RecMetric) and the speed of both runtimes.

  .venv/bin/python scripts/check_official_parity.py [--limit N] [--batch 16] [--f64 5]

`--f64 K` re-runs the K worst crops with our model in float64 and prints how far each
float32 runtime is from it: a large |dprob| that both runtimes share is float32 round-off of
an ill-conditioned crop, not a difference between the implementations.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ic15_rec"))
  ap.add_argument("--model", default="PP-OCRv4_mobile_rec")
  ap.add_argument("--limit", type=int, default=0, help="first N val crops (0 = all)")
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--tol", type=float, default=1e-4)
  ap.add_argument("--f64", type=int, default=0, help="check the K worst crops in float64")
  args = ap.parse_args()

  import cv2
  import jax
  if args.f64:
    jax.config.update("jax_enable_x64", True)  # before anything is traced
  import jax.numpy as jnp
  import onnxruntime as ort

  from textrec.training import metrics
  from textrec.inference import postprocess, preprocess
  from textrec.models import registry
  from textrec.weights import official

  lines = pathlib.Path(args.data, "val.txt").read_text(encoding="utf-8").splitlines()
  if args.limit:
    lines = lines[:args.limit]
  imgs, texts = [], []
  for lineno, line in enumerate(lines, 1):
    rel, text = line.split("\t", 1)
    img = cv2.imread(os.path.join(args.data, rel))
    if img is None:
      raise FileNotFoundError(f"val.txt:{lineno}: cannot read {rel}")
    imgs.append(img)
    texts.append(text)

  t0 = time.perf_counter()
  variables, cs = official.load_official(args.model)
  print(f"load_official: {time.perf_counter() - t0:.2f} s "
        f"(cache: {official.cache_dir(args.model)})")

  def make_probs(dtype):
    model = registry.get_model(args.model)(num_classes=cs.num_classes, deploy=True,
                                           with_nrtr=False, dtype=dtype)
    v = jax.tree.map(lambda a: jnp.asarray(a, dtype), variables)
    f = jax.jit(lambda v, x: jax.nn.softmax(
        model.apply(v, x, train=False)["ctc_logits"].astype(dtype), axis=-1))
    return lambda x: np.asarray(f(v, jnp.asarray(x, dtype)))

  ours_fn = make_probs(jnp.float32)
  sess = ort.InferenceSession(official.official_onnx_path(args.model),
                              providers=["CPUExecutionProvider"])
  in_name = sess.get_inputs()[0].name
  ort_fn = lambda x: sess.run(None, {in_name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]

  groups: dict[int, list[int]] = {}
  for i, img in enumerate(imgs):
    groups.setdefault(preprocess.predict_width(img), []).append(i)
  n = len(imgs)
  diff = np.zeros(n)
  pred_ours, pred_ort = [""] * n, [""] * n
  t_ours = t_ort = 0.0
  for width, idx in sorted(groups.items()):
    for s in range(0, len(idx), args.batch):
      chunk = idx[s:s + args.batch]
      x = np.zeros((args.batch, preprocess.HEIGHT, width, 3), np.float32)  # one shape per width
      for j, i in enumerate(chunk):
        x[j] = preprocess.resize_norm(imgs[i], width)
      if s == 0:
        ours_fn(x)  # compile outside the timing
      t = time.perf_counter()
      p_ours = ours_fn(x)[:len(chunk)]
      t_ours += time.perf_counter() - t
      t = time.perf_counter()
      p_ort = ort_fn(x)[:len(chunk)]
      t_ort += time.perf_counter() - t
      diff[chunk] = np.abs(p_ours - p_ort).max(axis=(1, 2))
      for i, (a, _), (b, _) in zip(chunk, postprocess.ctc_greedy_decode(p_ours, cs),
                                   postprocess.ctc_greedy_decode(p_ort, cs)):
        pred_ours[i], pred_ort[i] = a, b

  same = sum(a == b for a, b in zip(pred_ours, pred_ort))
  counts = ", ".join(f"{w}: {len(v)}" for w, v in sorted(groups.items()))
  print(f"{n} val crops, {{width: count}} = {{{counts}}}, batch {args.batch}")
  print(f"max |dprob| {diff.max():.3e}; median {np.median(diff):.2e}, "
        f"99th pct {np.percentile(diff, 99):.2e}; crops over {args.tol:g}: "
        f"{int((diff > args.tol).sum())}")
  print(f"identical greedy texts: {same}/{n}")
  for name, preds in (("ours", pred_ours), ("onnxruntime", pred_ort)):
    r = metrics.rec_metric(preds, texts)
    rf = metrics.rec_metric(preds, texts, is_filter=True)
    print(f"{name:12s} acc {r['acc']:.4f} norm_edit_dis {r['norm_edit_dis']:.4f} | "
          f"[0-9a-z] acc {rf['acc']:.4f} norm_edit_dis {rf['norm_edit_dis']:.4f}")
  print(f"time per crop (batch {args.batch}, after compile): ours {1e3 * t_ours / n:.1f} ms, "
        f"onnxruntime {1e3 * t_ort / n:.1f} ms")
  for i in np.argsort(-diff)[:5]:
    if pred_ours[i] != pred_ort[i] or diff[i] > args.tol:
      print(f"  {lines[i].split(chr(9))[0]}: |dprob| {diff[i]:.2e} ours {pred_ours[i]!r} "
            f"onnxruntime {pred_ort[i]!r} label {texts[i]!r}")

  if args.f64:
    f64_fn, ours1 = make_probs(jnp.float64), make_probs(jnp.float32)
    print(f"float64 check of the {args.f64} worst crops (each alone, batch 1):")
    for i in np.argsort(-diff)[:args.f64]:
      x = preprocess.resize_norm(imgs[i], preprocess.predict_width(imgs[i]))[None]
      p64, p32, pr = f64_fn(x), ours1(x), ort_fn(x)
      print(f"  {lines[i].split(chr(9))[0]}: ours-f32 vs f64 {np.abs(p32 - p64).max():.2e}, "
            f"onnxruntime vs f64 {np.abs(pr - p64).max():.2e}, "
            f"ours vs onnxruntime {np.abs(p32 - pr).max():.2e}")


if __name__ == "__main__":
  main()
