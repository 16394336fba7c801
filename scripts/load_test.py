"""Load, soak, bad-input and fault runs against `--config.mode=serve` (loopback only).

Each server is a subprocess on a free 127.0.0.1 port; clients are closed-loop threads, each
with one kept-alive connection, sending one IC15 val crop per request. Every 200 answer is
checked against single-image predict in this process (same backend): identical text.
Every loop is bounded in time (--seconds) and count (--max-requests).

  python scripts/load_test.py                      # load: batching vs max_batch=1 vs direct
  python scripts/load_test.py --only=soak --soak=20000
  python scripts/load_test.py --only=bad,faults
  python scripts/load_test.py --only=ocr           # /ocr: 8 clients x 500, checked vs the pipeline
  python scripts/load_test.py --only=ocr_soak --ocr_soak=5000 --ocr_small
  python scripts/load_test.py --only=ocr_workers   # /ocr throughput, serve.workers=1 vs 2

/ocr runs serve configs/ocr.py (the OCR pipeline, backend auto) on a drawn page and, where
../shared/data/ocr_images exists, its images shrunk to --ocr_side; --ocr_small: 320x100
one-line images drawn here. Every 200 answer's rec_texts / rec_polys must equal
textrec.create_pipeline("OCR").predict on the same image in this process. ocr_soak samples
the server's RSS every second and writes the samples and their curve to --ocr_soak_out
(rss_arena<A>_trim<T>.csv / .png for serve.malloc_arena_max A and malloc_trim_s T).
"""
from __future__ import annotations

import argparse
import base64
import collections
import importlib.util
import itertools
import json
import os
import pathlib
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from configs import common as common_config  # noqa: E402
from textrec.serving import server as server_lib  # noqa: E402
from textrec.serving.client import Client  # noqa: E402


# ----------------------------------------------------------------------------- server


class Server:
  """`python -m textrec.main --config.mode=serve` in a subprocess; stderr kept in `lines`."""

  def __init__(self, args, config: str = "", **serve: object):
    flags = dict(backend=args.backend, model_dir=args.model_dir, port=0)
    flags.update(serve)
    cmd = [sys.executable, "-m", "textrec.main", f"--config={config or args.config}",
           "--config.mode=serve"] + [f"--config.serve.{k}={v}" for k, v in flags.items()]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    self.lines: list[str] = []
    self.url = ""
    ready = threading.Event()

    def read():
      for line in self.proc.stderr:
        self.lines.append(line.rstrip())
        m = re.search(r" on (http://\S+)", line)
        if m and not self.url:
          self.url = m.group(1)
          ready.set()
      ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(120) or not self.url:
      self.proc.kill()
      raise RuntimeError("server did not start:\n" + "\n".join(self.lines[-20:]))

  def rss_mb(self) -> float:
    """RSS of the server and its processes (serve.workers), MB."""
    return sum(rss_mb(p) for p in [self.proc.pid, *descendants(self.proc.pid)])

  def metrics(self) -> str:
    with Client(self.url) as c:
      return c.request("GET", "/metrics")[2].decode()

  def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if self.proc.poll() is None:
      self.proc.send_signal(sig)
    rc = self.proc.wait(timeout)
    time.sleep(0.1)  # the reader thread takes the last lines
    return rc


def rss_mb(pid: int) -> float:
  try:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
      return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024
  except (OSError, StopIteration):  # gone
    return 0.0


def descendants(pid: int) -> list[int]:
  """The processes below `pid` (from /proc/*/stat's parent pids)."""
  parent = {}
  for d in os.listdir("/proc"):
    if d.isdigit():
      try:
        with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as f:
          parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        pass
  out, todo = [], [pid]
  while todo:
    p = todo.pop()
    kids = [c for c, pp in parent.items() if pp == p]
    out += kids
    todo += kids
  return out


def batch_hist(metrics: str) -> dict[str, float]:
  """le -> cumulative count of textrec_batch_size (plus "sum")."""
  out = {le: float(v) for le, v in re.findall(r'textrec_batch_size_bucket\{le="([^"]+)"\} (\S+)',
                                              metrics)}
  out["sum"] = float(re.search(r"textrec_batch_size_sum (\S+)", metrics).group(1))
  return out


def hist_delta(before: dict[str, float], after: dict[str, float]) -> str:
  """'size<=le: n' per bucket that got forwards, and the mean batch."""
  cum = {k: after[k] - before.get(k, 0.0) for k in after if k != "sum"}
  les = sorted((k for k in cum if k != "+Inf"), key=float) + ["+Inf"]
  parts, prev = [], 0.0
  for le in les:
    n = cum[le] - prev
    prev = cum[le]
    if n:
      parts.append(f"<={le.replace('.0', '')}:{int(n)}")
  total = cum["+Inf"]
  mean = (after["sum"] - before.get("sum", 0.0)) / total if total else 0.0
  return f"mean {mean:.1f} ({' '.join(parts)})"


# ----------------------------------------------------------------------------- clients


class Crops:
  """IC15 val crops: request bodies and the single-image predict texts to check against."""

  def __init__(self, ic15: pathlib.Path, n: int, rec):
    lines = (ic15 / "val.txt").read_text(encoding="utf-8").splitlines()[:n]
    raw = [(ic15 / ln.split("\t")[0]).read_bytes() for ln in lines]
    self.images = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in raw]
    self.bodies = [json.dumps({"image": base64.b64encode(b).decode()}).encode() for b in raw]
    t0 = time.perf_counter()
    self.texts = [rec.recognize([im])[0][0] for im in self.images]
    self.alone_s = time.perf_counter() - t0

  path = "/text-recognition"

  def check(self, i: int, answer: dict) -> str:
    text = answer["result"]["texts"][0]["rec_text"]
    return "ok" if text == self.texts[i] else "text differs from predict"


OCR_LINES = ["Dynamic batching", "serves OCR 2025", "textrec load test", "PP-OCRv5 pipeline"]
WORDS = ["invoice", "Total 42.50", "hello world", "Berlin", "2025-06-01", "OCR server",
         "quick brown fox", "ABC-123"]


def drawn_page() -> np.ndarray:
  """A white 560 x 900 page with four printed lines (as tests/test_ocr_generations.py)."""
  img = np.full((560, 900, 3), 255, np.uint8)
  for i, text in enumerate(OCR_LINES):
    cv2.putText(img, text, (40, 110 + 110 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 3,
                cv2.LINE_AA)
  return img


def drawn_line(text: str) -> np.ndarray:
  """A white 320 x 100 image with one printed line."""
  img = np.full((100, 320, 3), 255, np.uint8)
  cv2.putText(img, text, (12, 62), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 20, 20), 2, cv2.LINE_AA)
  return img


class OcrImages:
  """/ocr request bodies and create_pipeline("OCR")'s rec_texts / rec_polys for each."""

  path = "/ocr"

  def __init__(self, small: bool, shared: pathlib.Path, side: int):
    import textrec  # pylint: disable=g-import-not-at-top
    if small:
      self.names, self.images = WORDS, [drawn_line(w) for w in WORDS]
    else:
      self.names, self.images = ["drawn page"], [drawn_page()]
      for f in sorted(shared.glob("*.jpg")) if shared.is_dir() else []:
        img = cv2.imread(str(f))
        scale = side / max(img.shape[:2])
        if scale < 1:
          img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self.names.append(f.name)
        self.images.append(img)
    # PNG: lossless, so the server decodes the very pixels predicted here
    self.bodies = [json.dumps({"file": base64.b64encode(cv2.imencode(".png", im)[1]).decode(),
                               "fileType": 1}).encode() for im in self.images]
    pipe = textrec.create_pipeline("OCR")
    t0 = time.perf_counter()
    self.want = []
    for im in self.images:
      res = next(iter(pipe.predict(im))).json["res"]
      self.want.append((list(res["rec_texts"]), np.asarray(res["rec_polys"]).tolist()))
    self.alone_s = time.perf_counter() - t0
    self.lines = sum(len(t) for t, _ in self.want)

  def check(self, i: int, answer: dict) -> str:
    got = answer["result"]["ocrResults"][0]["prunedResult"]
    if got["rec_texts"] != self.want[i][0]:
      return "rec_texts differ from the pipeline"
    if np.asarray(got["rec_polys"]).tolist() != self.want[i][1]:
      return "rec_polys differ from the pipeline"
    return "ok"


def closed_loop(url: str, crops: Crops, clients: int, seconds: float, max_requests: int,
                stop_event: threading.Event | None = None,
                done: list[int] | None = None) -> dict:
  """`clients` threads send requests back to back for `seconds` (or `max_requests` in all);
  done[0] counts the answers as they come."""
  counter = itertools.count()
  lat: list[float] = []
  outcomes: collections.Counter = collections.Counter()
  lock = threading.Lock()
  t_end = time.monotonic() + seconds

  def worker():
    c = Client(url, timeout=120, retries=0)
    while time.monotonic() < t_end and not (stop_event and stop_event.is_set()):
      n = next(counter)
      if n >= max_requests:
        break
      i = n % len(crops.bodies)
      t0 = time.perf_counter()
      try:
        status, _, data = c.request("POST", crops.path, crops.bodies[i])
      except OSError as e:
        with lock:
          outcomes[f"connection error ({type(e).__name__})"] += 1
        c.close()
        time.sleep(0.05)
        continue
      dt = time.perf_counter() - t0
      kind = crops.check(i, json.loads(data)) if status == 200 else f"HTTP {status}"
      with lock:
        outcomes[kind] += 1
        if done is not None:
          done[0] += 1
        if kind == "ok":
          lat.append(dt)
    c.close()

  threads = [threading.Thread(target=worker) for _ in range(clients)]
  t0 = time.perf_counter()
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  wall = time.perf_counter() - t0
  ms = np.percentile(np.asarray(lat) * 1e3, [50, 95, 99]) if lat else [np.nan] * 3
  return dict(clients=clients, wall=wall, ok=outcomes["ok"], rps=outcomes["ok"] / wall,
              p50=ms[0], p95=ms[1], p99=ms[2],
              errors={k: v for k, v in outcomes.items() if k != "ok"})


def row(name: str, r: dict, hist: str = "") -> str:
  errs = sum(r["errors"].values())
  return (f"| {name} | {r['clients']} | {r['ok']} | {r['rps']:.1f} | {r['p50']:.0f} | "
          f"{r['p95']:.0f} | {r['p99']:.0f} | {errs} | {hist} |")


HEADER = ("| server | clients | answers | req/s | p50 ms | p95 ms | p99 ms | errors | "
          "batch sizes |\n|---|---|---|---|---|---|---|---|---|")


# ----------------------------------------------------------------------------- runs


def run_direct(rec, crops: Crops, seconds: float, batch: int) -> float:
  """onnxruntime (or JAX) called in-process on the same crops: images/s, the ceiling."""
  n, t0 = 0, time.perf_counter()
  for k in itertools.count():
    if time.perf_counter() - t0 >= seconds:
      break
    idx = [(k * batch + j) % len(crops.images) for j in range(batch)]
    rec.recognize([crops.images[i] for i in idx])
    n += batch
  return n / (time.perf_counter() - t0)


def run_load(args, rec, crops: Crops) -> None:
  print(f"\nload: {args.seconds:g} s per level, {len(crops.bodies)} IC15 val crops\n{HEADER}")
  for name, serve in (("batching", dict(max_batch=args.max_batch,
                                        max_delay_ms=args.max_delay_ms)),
                      ("max_batch=1", dict(max_batch=1, max_delay_ms=0))):
    srv = Server(args, **serve, max_queue=args.max_queue)
    try:
      # warm-up: first forwards (JAX compiles each batch size and width on first use)
      closed_loop(srv.url, crops, max(args.concurrency), 600, args.warmup)
      for c in args.concurrency:
        before = batch_hist(srv.metrics())
        r = closed_loop(srv.url, crops, c, args.seconds, args.max_requests)
        print(row(name, r, hist_delta(before, batch_hist(srv.metrics()))), flush=True)
        if r["errors"]:
          print(f"  errors: {r['errors']}")
    finally:
      srv.stop()
  for b in (1, args.max_batch):
    ips = run_direct(rec, crops, args.seconds, b)
    print(f"| direct in-process, batch {b} | - | - | {ips:.1f} img/s | | | | | |", flush=True)


def run_soak(args, crops: Crops) -> None:
  """args.soak requests in `args.soak_steps` steps, the server's RSS after each."""
  srv = Server(args, workers=args.workers, max_batch=args.max_batch,
               max_delay_ms=args.max_delay_ms, max_queue=args.max_queue)
  try:
    warm = closed_loop(srv.url, crops, args.soak_clients, 600, args.soak_warmup)
    rss = [srv.rss_mb()]
    t0, ok, errors = time.perf_counter(), 0, collections.Counter()
    for _ in range(args.soak_steps):
      r = closed_loop(srv.url, crops, args.soak_clients, args.soak_seconds / args.soak_steps,
                      args.soak // args.soak_steps)
      ok += r["ok"]
      errors.update(r["errors"])
      rss.append(srv.rss_mb())
    dt = time.perf_counter() - t0
    print(f"\nsoak: {ok} answers in {dt:.0f} s at {args.soak_clients} clients "
          f"({ok / dt:.1f} req/s), errors {dict(errors) or 0}; server RSS after "
          f"{warm['ok']} warm-up requests, then every {args.soak // args.soak_steps}: "
          f"{' '.join(f'{x:.0f}' for x in rss)} MB ({rss[-1] - rss[0]:+.1f} MB; "
          f"last half {rss[-1] - rss[len(rss) // 2]:+.1f} MB)")
  finally:
    srv.stop()


def png_header(w: int, h: int) -> bytes:
  """A PNG whose header says w x h, with no pixel data (a decompression bomb's header)."""
  def chunk(t: bytes, d: bytes) -> bytes:
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
          chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def bad_requests(good: bytes) -> list[tuple[str, bytes]]:
  enc = lambda b: base64.b64encode(b).decode()  # noqa: E731
  js = lambda o: json.dumps(o).encode()  # noqa: E731
  thin = cv2.imencode(".png", np.zeros((1, 500, 3), np.uint8))[1].tobytes()
  return [
      ("invalid base64", js({"image": "%%not base64%%"})),
      ("non-image bytes", js({"image": enc(b"GIF? no. " * 50)})),
      ("truncated PNG", js({"image": enc(good[:len(good) // 2])})),
      ("empty body", b""),
      ("0x0 image", js({"image": enc(png_header(0, 0))})),
      ("1x500 image", js({"image": enc(thin)})),
      ("20000x20000 header", js({"image": enc(png_header(20000, 20000))})),
      ("wrong JSON type", js({"image": [1, 2]})),
      ("unknown field", js({"image": enc(good), "lang": "en"})),
      ("50 MB body", b'{"image": "' + b"A" * (50 << 20) + b'"}'),
  ]


def run_bad(args, crops: Crops) -> None:
  """Bad requests sent while 8 clients keep a good load going; the good load must see no
  error and every bad request its status and one line."""
  srv = Server(args, max_batch=args.max_batch, max_delay_ms=args.max_delay_ms)
  try:
    box: dict = {}
    load = threading.Thread(target=lambda: box.update(
        r=closed_loop(srv.url, crops, 8, 600, 10**9, stop_event=box["stop"])))
    box["stop"] = threading.Event()
    load.start()
    print("\nbad input (while 8 clients send good crops):\n| request | status | errorMsg |\n"
          "|---|---|---|")
    good = base64.b64decode(json.loads(crops.bodies[0])["image"])
    for name, body in bad_requests(good):
      with Client(srv.url, retries=0) as c:
        status, _, data = c.request("POST", "/text-recognition", body)
      msg = json.loads(data)
      text = msg["errorMsg"] if status != 200 else f"rec_text {msg['result']['texts']}"
      print(f"| {name} | {status} | {text[:150]} |", flush=True)
    box["stop"].set()
    load.join()
    r = box["r"]
    print(f"good load meanwhile: {r['ok']} answers, errors {r['errors'] or 0}; server alive: "
          f"{srv.proc.poll() is None}")
  finally:
    srv.stop()


def run_faults(args, crops: Crops) -> None:
  """kill -9 and SIGTERM, each 1.5 s into a 16-client load run."""
  print("\nfaults (16 clients, signal 1.5 s in):")
  for sig in (signal.SIGKILL, signal.SIGTERM):
    srv = Server(args, max_batch=args.max_batch, max_delay_ms=args.max_delay_ms)
    closed_loop(srv.url, crops, 2, 2, 8)
    threading.Timer(1.5, srv.proc.send_signal, (sig,)).start()
    r = closed_loop(srv.url, crops, 16, 4, args.max_requests)
    rc = srv.stop()
    said = [ln for ln in srv.lines if "accepted" in ln]
    print(f"{signal.Signals(sig).name}: {r['ok']} answers ok, other outcomes {r['errors']}; "
          f"exit {rc}; server: {said[-1] if said else '(nothing: killed)'}")
    if sig == signal.SIGKILL:
      srv = Server(args)
      with Client(srv.url) as c:
        ok = c.call("/text-recognition", json.loads(crops.bodies[0]))["texts"][0]["rec_text"]
      print(f"restarted: answers again ({ok!r} == predict: {ok == crops.texts[0]})")
      srv.stop()
    else:
      accepted = int(re.search(r"(\d+) requests accepted", said[-1]).group(1)) if said else -1
      # the warm-up's 8 requests are accepted too
      print(f"SIGTERM: accepted {accepted} = {r['ok']} client answers + 8 warm-up: "
            f"{accepted == r['ok'] + 8}")


def ocr_server(args, workers: int = 1) -> Server:
  srv = Server(args, "configs/ocr.py", backend=args.ocr_backend, workers=workers,
               timeout_s=args.ocr_timeout_s, malloc_arena_max=args.malloc_arena_max,
               malloc_trim_s=args.malloc_trim_s)
  print(f"server: {srv.lines[-1] if srv.lines else ''}", flush=True)
  return srv


def load_line(what: str, r: dict) -> str:
  return (f"{what}: {r['ok']} answers equal to the pipeline's in {r['wall']:.1f} s "
          f"({r['rps']:.2f} req/s; p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms, p99 "
          f"{r['p99']:.0f} ms); errors {r['errors'] or 0}")


def run_ocr(args, images: OcrImages) -> None:
  """--ocr_clients closed-loop clients, --ocr_requests requests on /ocr."""
  srv = ocr_server(args)
  try:
    closed_loop(srv.url, images, args.ocr_clients, 600, args.ocr_clients)  # warm-up
    r = closed_loop(srv.url, images, args.ocr_clients, 3600, args.ocr_requests)
    print(load_line(f"/ocr, {args.ocr_clients} clients, {args.ocr_requests} requests", r),
          flush=True)
  finally:
    print(f"exit {srv.stop()}; {[ln for ln in srv.lines if 'accepted' in ln][-1:]}")


def run_ocr_soak(args, images: OcrImages) -> None:
  """--ocr_soak requests on /ocr; the server's RSS sampled every second against the answer
  count (soak_stats; the samples and their curve in --ocr_soak_out)."""
  srv = ocr_server(args, args.workers)
  try:
    closed_loop(srv.url, images, args.ocr_clients, 600, 2 * args.ocr_clients)  # warm-up
    done, samples, stop = [0], [], threading.Event()

    def sample():
      while not stop.is_set():
        samples.append((done[0], srv.rss_mb()))
        stop.wait(1.0)

    sampler = threading.Thread(target=sample)
    sampler.start()
    r = closed_loop(srv.url, images, args.ocr_clients, args.soak_seconds, args.ocr_soak,
                    done=done)
    stop.set()
    sampler.join()
    samples.append((done[0], srv.rss_mb()))
    n = np.array([s[0] for s in samples], float)
    mb = np.array([s[1] for s in samples])
    print(load_line(f"/ocr soak, {args.ocr_clients} clients, {args.ocr_soak} requests", r))
    print(f"server RSS ({len(samples)} samples, serve.workers={args.workers}, "
          f"malloc_arena_max={args.malloc_arena_max}, malloc_trim_s={args.malloc_trim_s}): "
          f"{soak_stats(n, mb, args.ocr_soak_settle)}", flush=True)
    if args.ocr_soak_out:
      save_soak(pathlib.Path(args.ocr_soak_out), soak_stem(args), n, mb,
                f"/ocr soak, {args.ocr_clients} clients; malloc_arena_max={args.malloc_arena_max}, "
                f"malloc_trim_s={args.malloc_trim_s}", args.ocr_soak_settle)
  finally:
    print(f"exit {srv.stop()}; {[ln for ln in srv.lines if 'accepted' in ln][-1:]}")


def soak_stem(args) -> str:
  return f"rss_arena{args.malloc_arena_max}_trim{args.malloc_trim_s:g}"


def window_means(n: np.ndarray, mb: np.ndarray, start: float, width: int = 500
                 ) -> tuple[np.ndarray, list[float]]:
  """(window starts, mean RSS) over consecutive `width`-answer windows from `start`; windows
  with 5 samples or fewer are left out."""
  starts = np.arange(start, n[-1], width)
  keep = [a for a in starts if ((n >= a) & (n < a + width)).sum() > 5]
  return np.array(keep), [float(mb[(n >= a) & (n < a + width)].mean()) for a in keep]


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def soak_stats(n: np.ndarray, mb: np.ndarray, settle: int) -> str:
  """RSS samples `mb` (MB) taken after `n` answers -> one line. The first `settle` answers
  (new batch shapes compiled, arenas filling) are left out of the comparison: after them,
  the first and the last 10 % of the answers compared by their mean and their floor (10th
  percentile: the memory held between bursts), the fitted slope, and the range of the
  500-answer window means."""
  k = n >= settle
  n2, mb2 = n[k], mb[k]
  span = n2[-1] - n2[0]
  first, last = mb2[n2 <= n2[0] + 0.1 * span], mb2[n2 >= n2[-1] - 0.1 * span]
  slope = np.polyfit(n2 / 1000, mb2, 1)[0]
  _, windows = window_means(n2, mb2, settle)
  f10, l10 = np.percentile(first, 10), np.percentile(last, 10)
  return (f"first {settle} answers {mb[~k].min():.0f}..{mb[~k].max():.0f} MB; then the first "
          f"10 % mean {first.mean():.1f} MB, the last 10 % {last.mean():.1f} MB "
          f"({100 * (last.mean() / first.mean() - 1):+.1f} %); floor (10th percentile) "
          f"{f10:.1f} -> {l10:.1f} MB ({100 * (l10 / f10 - 1):+.1f} %); slope {slope:+.2f} MB "
          f"per 1000 requests; 500-answer means {min(windows):.0f}..{max(windows):.0f} MB; "
          f"samples {mb2.min():.0f}..{mb2.max():.0f} MB")


def compare_soaks(paths: list[str], settle: int, png: str) -> None:
  """soak_stats of the samples earlier ocr_soak runs saved, and their 500-answer window
  means on one plot (`png`)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 3.5))
  for path in paths:
    d = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    n, mb = d[:, 0], d[:, 1]
    print(f"{path}: {len(d)} samples; {soak_stats(n, mb, settle)}")
    starts, means = window_means(n, mb, 0)
    ax.plot(starts + 250, means, "o-", ms=3, label=pathlib.Path(path).stem)
    print(f"  500-answer means from 0: {' '.join(f'{m:.0f}' for m in means)} MB")
  ax.axvline(settle, color="gray", ls="--", lw=0.8)
  ax.set_xlabel("requests answered")
  ax.set_ylabel("server RSS, 500-answer mean (MB)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  pathlib.Path(png).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(png, dpi=100)
  plt.close(fig)
  print(f"wrote {png}")


def save_soak(out: pathlib.Path, stem: str, n: np.ndarray, mb: np.ndarray, title: str,
              settle: int) -> None:
  """The soak's RSS samples as <out>/<stem>.csv and a curve, <out>/<stem>.png."""
  plt = _pyplot()
  out.mkdir(parents=True, exist_ok=True)
  np.savetxt(out / f"{stem}.csv", np.stack([n, mb], 1), fmt=["%d", "%.1f"], delimiter=",",
             header="answers,rss_mb", comments="")
  fig, ax = plt.subplots(figsize=(8, 3.5))
  ax.plot(n, mb, lw=0.8)
  ax.axvline(settle, color="gray", ls="--", lw=0.8)
  ax.text(settle, 0.05 * float(mb.max()), f" first {settle}: settling", fontsize=8)
  ax.set_xlabel("requests answered")
  ax.set_ylabel("server RSS (MB)")
  ax.set_ylim(0, max(1.0, float(mb.max())) * 1.1)
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(out / f"{stem}.png", dpi=100)
  plt.close(fig)
  print(f"wrote {out / stem}.csv and .png", flush=True)


def run_ocr_workers(args, images: OcrImages) -> None:
  """/ocr throughput with serve.workers=1 and 2, the same load."""
  for w in (1, 2):
    srv = ocr_server(args, w)
    try:
      closed_loop(srv.url, images, args.ocr_clients, 600, 4 * args.ocr_clients)  # warm-up
      with open("/proc/loadavg", encoding="ascii") as f:
        load = " ".join(f.read().split()[:3])
      r = closed_loop(srv.url, images, args.ocr_clients, 3600, args.ocr_compare)
      print(load_line(f"serve.workers={w}, {args.ocr_clients} clients, {args.ocr_compare} "
                      f"requests (load average before: {load})", r), flush=True)
    finally:
      print(f"exit {srv.stop()}; {[ln for ln in srv.lines if 'accepted' in ln][-1:]}")


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", default="configs/v4_mobile.py")
  ap.add_argument("--backend", default="onnx")
  ap.add_argument("--model_dir", dest="model_dir", default="")
  ap.add_argument("--ic15", default=str(REPO.parent / "shared" / "data" / "ic15_rec"))
  ap.add_argument("--crops", type=int, default=200, help="IC15 val crops cycled through")
  ap.add_argument("--only", default="load", help="comma list of load,soak,bad,faults")
  ap.add_argument("--seconds", type=float, default=10.0, help="per load level")
  ap.add_argument("--concurrency", default="1,8,32,128")
  ap.add_argument("--max_requests", type=int, default=20000, help="per load level")
  ap.add_argument("--warmup", type=int, default=8, help="requests before a server's levels")
  ap.add_argument("--max_batch", type=int, default=32)
  ap.add_argument("--max_delay_ms", type=float, default=5.0)
  ap.add_argument("--max_queue", type=int, default=256)
  ap.add_argument("--soak", type=int, default=20000, help="soak requests")
  ap.add_argument("--soak_clients", type=int, default=32)
  ap.add_argument("--soak_seconds", type=float, default=3600.0, help="soak time bound")
  ap.add_argument("--soak_warmup", type=int, default=500)
  ap.add_argument("--soak_steps", type=int, default=5, help="RSS samples")
  ap.add_argument("--ocr_backend", default="auto", help="serve.backend of the /ocr server")
  ap.add_argument("--ocr_clients", type=int, default=8)
  ap.add_argument("--ocr_requests", type=int, default=500)
  ap.add_argument("--ocr_soak", type=int, default=5000)
  ap.add_argument("--ocr_timeout_s", type=float, default=30.0,
                  help="serve.timeout_s of the /ocr server (past it: 504)")
  ap.add_argument("--ocr_compare", type=int, default=200, help="requests per workers setting")
  ap.add_argument("--ocr_small", action="store_true", help="320x100 one-line images")
  ap.add_argument("--ocr_side", type=int, default=640, help="longer side of shared images")
  ap.add_argument("--ocr_images", default=str(REPO.parent / "shared" / "data" / "ocr_images"))
  ap.add_argument("--workers", type=int, default=1, help="serve.workers (soak, ocr_soak)")
  serve_defaults = common_config.serve_section()
  ap.add_argument("--malloc_arena_max", type=int, default=serve_defaults.malloc_arena_max,
                  help="serve.malloc_arena_max of the /ocr server (0: glibc's default)")
  ap.add_argument("--malloc_trim_s", type=float, default=serve_defaults.malloc_trim_s,
                  help="serve.malloc_trim_s of the /ocr server (0: never)")
  ap.add_argument("--ocr_soak_settle", type=int, default=500,
                  help="answers left out of ocr_soak's RSS comparison (compiles, arenas)")
  ap.add_argument("--soak_csv", default="",
                  help="comma list of ocr_soak CSVs: print their statistics, plot them "
                  "(<ocr_soak_out>/rss_compare.png) and exit")
  ap.add_argument("--ocr_soak_out", default=str(REPO / "experiments" / "serving" / "soak"),
                  help="where ocr_soak writes its RSS samples (CSV) and curve (PNG); '' none")
  args = ap.parse_args()
  if args.soak_csv:
    compare_soaks(args.soak_csv.split(","), args.ocr_soak_settle,
                  str(pathlib.Path(args.ocr_soak_out or ".") / "rss_compare.png"))
    return
  args.concurrency = [int(c) for c in args.concurrency.split(",")]
  only = args.only.split(",")
  if any(o.startswith("ocr") for o in only):
    images = OcrImages(args.ocr_small, pathlib.Path(args.ocr_images), args.ocr_side)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs; "
          f"{len(images.images)} images ({images.lines} lines; {', '.join(images.names)}), "
          f"create_pipeline('OCR') one at a time in {images.alone_s:.1f} s", flush=True)
    runs = dict(ocr=run_ocr, ocr_soak=run_ocr_soak, ocr_workers=run_ocr_workers)
    for name in only:
      runs[name](args, images)
    return
  ic15 = pathlib.Path(args.ic15)
  if not (ic15 / "val.txt").is_file():
    sys.exit(f"{ic15}/val.txt not found (--ic15=DIR)")
  spec = importlib.util.spec_from_file_location("cfg", REPO / args.config)
  cfg = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cfg)
  rec = server_lib.load_recognizer(cfg.get_config().model.name, args.model_dir, args.backend,
                                   args.max_batch)
  crops = Crops(ic15, args.crops, rec)
  print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"{rec.model_name} ({rec.source}); reference: {len(crops.images)} crops one at a time "
        f"in {crops.alone_s:.1f} s")
  runs = dict(load=lambda: run_load(args, rec, crops), soak=lambda: run_soak(args, crops),
              bad=lambda: run_bad(args, crops), faults=lambda: run_faults(args, crops))
  for name in args.only.split(","):
    runs[name]()


if __name__ == "__main__":
  main()
