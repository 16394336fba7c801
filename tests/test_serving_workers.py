"""serve.workers > 1 (textrec/serving/workers.py): worker processes on one port, /metrics
summed over them, SIGTERM drains them all, a dead worker stops the server. The servers are
subprocesses on a free loopback port (the official PP-OCRv4 mobile ONNX, quick to load)."""
from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import cv2
import pytest

import rendered_words
from textrec import cli
from textrec.serving import server as server_lib
from textrec.serving import workers
from textrec.serving.client import Client

REPO = pathlib.Path(__file__).resolve().parents[1]


def start(n: int) -> tuple[subprocess.Popen, str]:
  """`--config.mode=serve` with n workers; (process, URL) once it says it serves."""
  env = dict(os.environ, PYTHONPATH=str(REPO), TEXTREC_HUGEPAGES="0")
  proc = subprocess.Popen(
      [sys.executable, "-m", "textrec.main", "--config=configs/v4_mobile.py",
       "--config.mode=serve", "--config.serve.backend=onnx", "--config.serve.port=0",
       "--config.serve.max_delay_ms=50", f"--config.serve.workers={n}"],
      cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
  line, deadline = "", time.monotonic() + 90
  while " on http://" not in line:
    line = proc.stderr.readline()
    if not line and proc.poll() is not None or time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f"server did not start: {line}{proc.stderr.read()}")
  assert f"{n} workers" in line, line
  return proc, line.split(" on ")[1].split()[0]


def body(img) -> bytes:
  return json.dumps({"image": base64.b64encode(cv2.imencode(".png", img)[1]).decode()}).encode()


def health_pid(url: str) -> int:
  with Client(url, retries=0) as c:  # a fresh connection: any worker may accept it
    return json.loads(c.request("GET", "/health")[2])["result"]["worker"]["pid"]


def test_workers_answer_sum_metrics_and_drain_on_sigterm():
  proc, url = start(2)
  try:
    pids = set()
    for _ in range(400):
      pids.add(health_pid(url))
      if len(pids) == 2:
        break
    assert len(pids) == 2, pids  # both workers accept connections
    assert proc.pid not in pids
    words = rendered_words.images(6)
    sent = 0
    with Client(url, retries=0) as c:
      for img, _ in words:
        status, _, data = c.request("POST", "/text-recognition", body(img))
        assert status == 200, data
        sent += 1
    # spread over workers: fresh connections, answered the same
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
      def one(i):
        with Client(url, retries=0) as c:
          return json.loads(c.request("POST", "/text-recognition", body(words[i][0]))[2])
      answers = list(pool.map(one, range(6)))
    sent += 6
    assert all(a["errorCode"] == 0 for a in answers)
    seen = set()
    for _ in range(40):  # any worker's /metrics holds every worker's requests
      with Client(url, retries=0) as c:
        text = c.request("GET", "/metrics")[2].decode()
        seen.add(json.loads(c.request("GET", "/health")[2])["result"]["worker"]["pid"])
      assert f'textrec_requests_total{{endpoint="text-recognition"}} {sent}.0' in text, text
      assert "textrec_queue_depth 0.0" in text
      if len(seen) == 2:
        break
    assert len(seen) == 2, seen
    # SIGTERM with requests in flight on both workers: all answered, exit 0
    slow = json.dumps({"images": [json.loads(body(img))["image"] for img, _ in words] * 4})

    def post_slow():
      with Client(url, retries=0, timeout=60) as c:
        return c.request("POST", "/text-recognition", slow.encode())[0], time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(4) as pool, Client(url) as c:
      futs = [pool.submit(post_slow) for _ in range(4)]
      want = f'textrec_requests_total{{endpoint="text-recognition"}} {sent + 4}.0'
      deadline = time.monotonic() + 30
      while want not in c.request("GET", "/metrics")[2].decode():
        assert time.monotonic() < deadline, "requests not accepted"
        time.sleep(0.01)
      proc.send_signal(signal.SIGTERM)
      t_term = time.monotonic()
      got = [f.result(timeout=60) for f in futs]
    assert [s for s, _ in got] == [200] * 4
    assert proc.wait(timeout=60) == 0
    tail = proc.stderr.read()
    total = sent + 4
    assert f"{total} requests accepted, {total} answered (2 workers: " in tail, tail
    assert max(t for _, t in got) > t_term  # answered after the signal: drained
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_a_dead_worker_stops_the_server_with_one_line():
  proc, url = start(2)
  try:
    victim = health_pid(url)
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=60) == 1
    tail = proc.stderr.read()
    said = [ln for ln in tail.splitlines() if f"(pid {victim}) stopped" in ln]
    assert said and "(killed by SIGKILL); stopping the others" in said[0], tail
    assert re.search(r"requests accepted, \d+ answered \(2 workers", tail), tail
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_cpu_shares():
  assert workers.cpu_shares(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
  assert workers.cpu_shares(3, [4, 5, 6]) == [[4], [5], [6]]
  assert workers.cpu_shares(3, [0, 1]) == [[], [], []]  # fewer CPUs: not pinned
  assert workers.cpu_shares(1, [0, 1]) == [[0, 1]]


def test_workers_below_one_is_a_usage_error():
  s = cli.load_config_file(str(REPO / "configs" / "v4_mobile.py")).serve
  s.workers = 0
  with pytest.raises(ValueError, match="serve.workers must be >= 1, got 0"):
    server_lib.limits_of(s)
