"""serve.workers > 1: N worker processes on one port, each with its own model.

The parent binds host:port once and starts the workers with multiprocessing's "spawn"
(fresh interpreters: JAX and onnxruntime are not fork-safe). Each worker inherits the
listening socket, loads the model and serves it with uvicorn; the kernel gives each new
connection to the worker that accepts it first (a kept-alive connection stays on its worker).

Threads: each worker is pinned (sched_setaffinity) to its share of the CPUs the parent may
use, cores / N each, so XLA:CPU's and OpenCV's thread pools (sized from the affinity mask)
and onnxruntime's threads stay on that share instead of N x cores threads competing. With
fewer CPUs than workers nothing is pinned.

Metrics: prometheus_client's multiprocess mode. PROMETHEUS_MULTIPROC_DIR is a fresh temporary
directory, so /metrics on any worker shows the counters and histograms summed over all
workers, and the queue depth summed over the live ones.

Stopping: SIGTERM or SIGINT to the parent is passed to every worker, which drains as a single
server does; the parent then prints the requests accepted and answered in all and exits 0.
A worker that exits on its own (killed, out of memory, crashed) is not restarted: the parent
prints one line naming it, stops the others (they drain) and exits 1, so whatever supervises
the service (systemd, Kubernetes) sees the failure and restarts it whole. A restarted worker
would load and compile its model again while the port answers at reduced capacity, and
whatever killed it would likely kill it again.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any, Callable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1

# target(sock, index, ready) -> {"accepted": int, "answered": int}; ready() once serving.
Target = Callable[[socket.socket, int, Callable[[], None]], dict]


def cpu_shares(n: int, cpus: list[int] | None = None) -> list[list[int]]:
  """The CPUs each of n workers is pinned to: `cpus` (default: this process's) in n
  contiguous shares, sizes differing by at most one; [] each (not pinned) if fewer than n."""
  cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
  if len(cpus) < n:
    return [[] for _ in range(n)]
  k, extra = divmod(len(cpus), n)
  out, start = [], 0
  for i in range(n):
    size = k + (i < extra)
    out.append(cpus[start:start + size])
    start += size
  return out


def _die_with_parent(ppid: int) -> None:
  """SIGTERM this process (a graceful drain) when the parent dies, even by kill -9 (Linux)."""
  try:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
  except (OSError, AttributeError):
    return
  if os.getppid() != ppid:  # the parent died before prctl
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(target: Target, sock: socket.socket, index: int, cpus: list[int], ppid: int,
                 conn) -> None:
  """A worker process: pinned, tied to the parent, reports ready / done / error on `conn`."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
  _die_with_parent(ppid)
  if cpus:
    os.sched_setaffinity(0, cpus)
  try:
    counts = target(sock, index, lambda: conn.send(("ready", index)))
  except BaseException as e:  # pylint: disable=broad-except  (the parent re-raises it)
    try:
      conn.send(("error", index, e))
    except Exception:  # pylint: disable=broad-except  (an exception that does not pickle)
      conn.send(("error", index, RuntimeError(f"{type(e).__name__}: {e}")))
    sys.exit(1)
  conn.send(("done", index, dict(counts)))


class _Worker:
  def __init__(self, index: int, proc, conn):
    self.index, self.proc, self.conn = index, proc, conn
    self.ready = False
    self.counts: dict[str, int] | None = None
    self.error: BaseException | None = None

  def drain(self) -> None:
    """Reads what the worker sent (after its exit too)."""
    while self.conn is not None:
      try:
        if not self.conn.poll():
          return
        msg = self.conn.recv()
      except (EOFError, OSError):
        self.conn = None
        return
      if msg[0] == "ready":
        self.ready = True
      elif msg[0] == "done":
        self.counts = msg[2]
      else:
        self.error = msg[2]


def supervise(n: int, host: str, port: int, target: Target, name: str,
              drain_s: float) -> int:
  """Serves with n workers running `target` on one socket until SIGTERM/SIGINT; returns the
  exit code (0 drained, 1 a worker failed). Prints the address once every worker serves, and
  the totals at the end. A worker's loading error is re-raised here after the others stop."""
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  sock = socket.create_server((host, port), family=family, backlog=2048)
  host, port = sock.getsockname()[:2]
  metrics_dir = tempfile.mkdtemp(prefix="textrec-metrics-")
  os.environ[MULTIPROC_ENV] = metrics_dir  # the workers inherit it
  ctx = mp.get_context("spawn")
  t0 = time.perf_counter()
  workers = []
  for i, cpus in enumerate(cpu_shares(n)):
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker_main, args=(target, sock, i, cpus, os.getpid(), send),
                       name=f"textrec-serve-{i}", daemon=False)
    proc.start()
    send.close()
    workers.append(_Worker(i, proc, recv))
  sock.close()  # the workers hold it now
  state = {"stopping": False, "deadline": None}

  def stop(*_):
    if not state["stopping"]:
      state["stopping"] = True
      state["deadline"] = time.monotonic() + drain_s
    for w in workers:
      if w.proc.exitcode is None:
        try:
          os.kill(w.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
          pass

  signal.signal(signal.SIGTERM, stop)
  signal.signal(signal.SIGINT, stop)
  failed, announced = False, False
  try:
    while any(w.proc.exitcode is None for w in workers):
      live = [w for w in workers if w.proc.exitcode is None]
      waits = [w.proc.sentinel for w in live] + [w.conn for w in live if w.conn is not None]
      mp_connection.wait(waits, timeout=1.0)
      for w in workers:
        w.drain()
      if not announced and all(w.ready for w in workers) and not state["stopping"]:
        announced = True
        pids = ", ".join(str(w.proc.pid) for w in workers)
        print(f"serve: {name} on http://{host}:{port} ({n} workers, pids {pids}; all loaded "
              f"in {time.perf_counter() - t0:.1f} s; pid {os.getpid()})", file=sys.stderr,
              flush=True)
      for w in workers:  # all of them: the loop's own test may have seen the exit first
        if w.proc.exitcode is not None and not state["stopping"]:
          w.drain()
          failed = True
          why = (f"error: {w.error}" if w.error is not None else
                 f"exit code {w.proc.exitcode}" if w.proc.exitcode >= 0 else
                 f"killed by {signal.Signals(-w.proc.exitcode).name}")
          print(f"serve: worker {w.index} (pid {w.proc.pid}) stopped ({why}); stopping the "
                "others", file=sys.stderr, flush=True)
          stop()
      if state["deadline"] is not None and time.monotonic() > state["deadline"]:
        for w in workers:
          if w.proc.exitcode is None:
            print(f"serve: worker {w.index} (pid {w.proc.pid}) did not drain within "
                  f"{drain_s:g} s; killed", file=sys.stderr, flush=True)
            w.proc.kill()
            failed = True
        state["deadline"] = None
    for w in workers:
      w.proc.join()
      w.drain()
  finally:
    shutil.rmtree(metrics_dir, ignore_errors=True)
  counts = [w.counts or {"accepted": 0, "answered": 0} for w in workers]
  per = ", ".join(f"{c['accepted']}/{c['answered']}" for c in counts)
  print(f"serve: stopped; {sum(c['accepted'] for c in counts)} requests accepted, "
        f"{sum(c['answered'] for c in counts)} answered ({n} workers: {per})",
        file=sys.stderr, flush=True)
  errors = [w.error for w in workers if w.error is not None]
  if errors:
    raise errors[0]
  ok = announced and not failed and all(w.counts is not None for w in workers)
  return 0 if ok else 1


def info(index: int) -> dict[str, Any]:
  """What /health shows about the worker answering."""
  return {"index": index, "pid": os.getpid()}
