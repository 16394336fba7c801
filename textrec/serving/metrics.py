"""The server's Prometheus metrics (GET /metrics).

With serve.workers > 1 (PROMETHEUS_MULTIPROC_DIR set, textrec/serving/workers.py) every
worker writes its values to that directory and /metrics on any worker reads them all:
counters and histograms summed over the workers, the queue depth over the live ones.
"""
from __future__ import annotations

import os

import prometheus_client as prom
from prometheus_client import multiprocess

from textrec.serving.batcher import Batcher


class Metrics:
  """Per-app metrics in their own registry, so several apps may live in one process."""

  def __init__(self, batcher: Batcher):
    self.batcher = batcher
    self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    self.registry = r = prom.CollectorRegistry()
    self.requests = prom.Counter("textrec_requests", "Requests received", ["endpoint"],
                                 registry=r)
    self.errors = prom.Counter("textrec_errors", "Error answers", ["endpoint", "kind"],
                               registry=r)
    self.images = prom.Counter("textrec_images", "Images recognised", registry=r)
    self.latency = prom.Histogram(
        "textrec_request_latency_seconds", "Request latency", ["endpoint"], registry=r,
        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
    self.batch = prom.Histogram("textrec_batch_size", "Images per forward", registry=r,
                                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
    self.queue = prom.Gauge("textrec_queue_depth", "Images waiting for a batch", registry=r,
                            multiprocess_mode="livesum")
    if not self.multiprocess:  # read when scraped; across processes, set at each batch
      self.queue.set_function(lambda: batcher.depth)

  def on_batch(self, size: int) -> None:
    """A forward of `size` images started."""
    self.batch.observe(size)
    if self.multiprocess:
      self.queue.set(self.batcher.depth)

  def text(self) -> bytes:
    """The metrics in Prometheus' text format (every worker's, summed, with serve.workers)."""
    if not self.multiprocess:
      return prom.generate_latest(self.registry)
    self.queue.set(self.batcher.depth)
    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return prom.generate_latest(registry)

  content_type = prom.CONTENT_TYPE_LATEST
