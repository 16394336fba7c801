"""onnxruntime ms/img of our exported ONNX vs the official ONNX, same images, one process.

  python scripts/bench_export.py [--inference_dir OUT/inference] [--n 200] [--batch 6] \
      [--threads 1] [--repeats 5]

Without --inference_dir the official weights are exported first (ONNX only, to a temporary
dir). Images: the first --n crops of ../shared/data/ic15_rec/val.txt when present, else random
crops of random aspect ratios. Each crop is padded to its predict bucket width; batches are
formed by width (as the predictor does). Every batch runs through both sessions back to back,
in alternating order, so machine load affects both alike; the ratio uses each model's total
time per repeat (median over repeats). With --threads 1 it also reports the calling thread's
CPU time, which other processes on a busy machine disturb far less than wall time. Also
reports how many texts agree.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textrec.inference import onnx_backend, postprocess, preprocess  # noqa: E402

NAME = "PP-OCRv4_mobile_rec"


def load_images(n: int) -> tuple[list[np.ndarray], str]:
  import cv2  # pylint: disable=g-import-not-at-top

  ic15 = REPO.parent / "shared" / "data" / "ic15_rec"
  if (ic15 / "val.txt").is_file():
    lines = (ic15 / "val.txt").read_text(encoding="utf-8").splitlines()[:n]
    return [cv2.imread(str(ic15 / ln.split("\t")[0]), cv2.IMREAD_COLOR) for ln in lines], \
        f"{len(lines)} IC15 val crops"
  rng = np.random.default_rng(0)
  imgs = [rng.integers(0, 256, (32, int(rng.integers(16, 400)), 3), dtype=np.uint8)
          for _ in range(n)]
  return imgs, f"{n} random crops (no ../shared)"


def make_batches(imgs: list[np.ndarray], batch: int) -> list[np.ndarray]:
  """NCHW f32 batches of crops padded to their (shared) bucket width."""
  widths = [preprocess.predict_width(im) for im in imgs]
  out = []
  for w in sorted(set(widths)):
    idx = [i for i, wi in enumerate(widths) if wi == w]
    for s in range(0, len(idx), batch):
      out.append(np.stack([preprocess.resize_norm(imgs[i], w)
                           for i in idx[s:s + batch]]).transpose(0, 3, 1, 2).copy())
  return out


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--inference_dir", default="")
  ap.add_argument("--n", type=int, default=200)
  ap.add_argument("--batch", type=int, default=6)
  ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args()

  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  tmp = None
  inf_dir = args.inference_dir
  if not inf_dir:
    from textrec.export import export  # pylint: disable=g-import-not-at-top

    tmp = tempfile.TemporaryDirectory()
    inf_dir = os.path.join(tmp.name, "inference")
    module, variables, cs, source = export.load_weights(NAME)
    export.export(NAME, module, variables, cs, inf_dir, "onnx", source=source, check=False)

  cpu = ["CPUExecutionProvider"]
  ours, cs, meta = onnx_backend.load_inference_dir(inf_dir, providers=cpu,
                                                   intra_op_threads=args.threads)
  opts = ort.SessionOptions()
  opts.intra_op_num_threads = args.threads
  ref_sess = ort.InferenceSession(official.official_onnx_path(NAME), opts, providers=cpu)
  ref_in = ref_sess.get_inputs()[0].name
  ref = lambda x: ref_sess.run(None, {ref_in: x})[0]  # noqa: E731

  imgs, what = load_images(args.n)
  batches = make_batches(imgs, args.batch)
  n_img = sum(len(b) for b in batches)
  same = sum(a == b for x in batches
             for (a, _), (b, _) in zip(postprocess.ctc_greedy_decode(ours(x), cs),
                                       postprocess.ctc_greedy_decode(ref(x), cs)))
  clocks = {"wall": time.perf_counter, "cpu": time.thread_time}
  totals = {(c, k): [] for c in clocks for k in ("ours", "official")}
  for r in range(args.repeats):
    t = dict.fromkeys(totals, 0.0)
    for i, x in enumerate(batches):
      order = (("ours", ours), ("official", ref)) if (i + r) % 2 == 0 else \
          (("official", ref), ("ours", ours))
      for k, f in order:
        t0, c0 = time.perf_counter(), time.thread_time()
        f(x)
        t["wall", k] += time.perf_counter() - t0
        t["cpu", k] += time.thread_time() - c0
    for key, v in t.items():
      totals[key].append(v)
  print(f"{what}, {len(batches)} batches (<= {args.batch}), {args.threads} thread(s), "
        f"onnxruntime {ort.__version__}, {args.repeats} repeats; same text on {same}/{n_img}")
  print(f"ours:     {meta['onnx_path']} ({os.path.getsize(meta['onnx_path']) / 1e6:.2f} MB)")
  print(f"official: {official.official_onnx_path(NAME)}")
  for c in clocks:
    if c == "cpu" and args.threads != 1:
      continue  # the calling thread's CPU time covers the work only with 1 intra-op thread
    ms = {k: 1000 * statistics.median(totals[c, k]) / n_img for k in ("ours", "official")}
    ratios = [a / b for a, b in zip(totals[c, "ours"], totals[c, "official"])]
    print(f"{c:4s} ms/img: ours {ms['ours']:.2f}, official {ms['official']:.2f}; ratio "
          f"ours/official median {statistics.median(ratios):.3f} "
          f"(per repeat {', '.join(f'{r:.3f}' for r in ratios)})")
  if tmp is not None:
    tmp.cleanup()
  return 0


if __name__ == "__main__":
  sys.exit(main())
