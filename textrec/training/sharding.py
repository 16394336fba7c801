"""Data parallelism: a 1-D mesh over every device of every process, axis "data".

The batch is sharded along "data" (NamedSharding P("data")), the train state is replicated
(P()). Multi-host: `jax.distributed.initialize()` when JAX_COORDINATOR_ADDRESS (or a
SLURM/Open MPI launch of several tasks) says so; each process feeds its share of the batch
(Grain shards by process) through `jax.make_array_from_process_local_data`.
"""
from __future__ import annotations

import os
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from textrec.errors import UsageError

BATCH_KEYS = ("image", "label_ctc", "label_ctc_pad", "label_nrtr")


def maybe_initialize_distributed() -> None:
  """Multi-host set-up when the environment describes one (idempotent)."""
  env = os.environ
  multi = bool(env.get("JAX_COORDINATOR_ADDRESS")) or int(env.get("SLURM_NTASKS", "1")) > 1 \
      or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
  if not multi or getattr(maybe_initialize_distributed, "_done", False):
    return
  kw = {}
  if env.get("JAX_NUM_PROCESSES"):
    kw["num_processes"] = int(env["JAX_NUM_PROCESSES"])
  if env.get("JAX_PROCESS_ID"):
    kw["process_id"] = int(env["JAX_PROCESS_ID"])
  jax.distributed.initialize(**kw)
  maybe_initialize_distributed._done = True


def make_mesh(devices=None) -> Mesh:
  """1-D mesh over all (global) devices with axis "data"."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows -> global arrays sharded along "data" (rows must divide evenly)."""
  sharding = NamedSharding(mesh, P("data"))
  n_local = len(mesh.local_devices)
  out = {}
  for k in BATCH_KEYS:
    v = np.asarray(batch[k])
    if v.shape[0] % n_local:
      raise UsageError(f"batch of {v.shape[0]} rows cannot be split over {n_local} local "
                       "devices; make the batch size a multiple of the device count")
    out[k] = jax.make_array_from_process_local_data(sharding, v)
  return out


def replicate(tree: Any, mesh: Mesh) -> Any:
  """`tree` on every device of `mesh` (P())."""
  return jax.device_put(tree, NamedSharding(mesh, P()))
