"""The server's Prometheus metrics (GET /metrics)."""
from __future__ import annotations

import prometheus_client as prom

from textrec.serving.batcher import Batcher


class Metrics:
  """Per-app metrics in their own registry, so several apps may live in one process."""

  def __init__(self, batcher: Batcher):
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
    queue = prom.Gauge("textrec_queue_depth", "Images waiting for a batch", registry=r)
    queue.set_function(lambda: batcher.depth)

  def text(self) -> bytes:
    """The metrics in Prometheus' text format."""
    return prom.generate_latest(self.registry)

  content_type = prom.CONTENT_TYPE_LATEST
