"""Dynamic batching: images of concurrent requests are gathered into one forward.

A batch starts with the oldest waiting image and takes whatever else waits, then waits up
to `max_delay_s` for more until it holds `max_batch`. One worker thread runs the forwards,
so the event loop keeps accepting (and gathering the next batch) while one runs. textrec's
results do not depend on the company an image keeps in its batch (preprocess.BUCKETS), so
batching changes no answer. A forward that fails is retried one image at a time, so only the
images that fail get the error.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

# images -> one result per image, in order (e.g. TextRecognizer.recognize).
BatchFn = Callable[[Sequence[np.ndarray]], Sequence[Any]]


class QueueFull(Exception):
  """The queue cannot take the request's images now."""


@dataclasses.dataclass
class _Item:
  image: np.ndarray
  future: asyncio.Future


class Batcher:
  """Gathers images from concurrent `submit` calls into calls of `fn` on a worker thread."""

  def __init__(self, fn: BatchFn, max_batch: int = 32, max_delay_s: float = 0.005,
               max_queue: int = 256, on_batch: Callable[[int], None] | None = None):
    if max_batch < 1 or max_queue < 1 or max_delay_s < 0:
      raise ValueError(f"need max_batch >= 1, max_queue >= 1, max_delay_s >= 0; got "
                       f"{max_batch}, {max_queue}, {max_delay_s}")
    self.fn, self.max_batch, self.max_delay_s = fn, int(max_batch), float(max_delay_s)
    self.max_queue = int(max_queue)
    self.on_batch = on_batch
    self._items: collections.deque[_Item] = collections.deque()
    self._wakeup: asyncio.Event | None = None
    self._task: asyncio.Task | None = None
    self._pool: concurrent.futures.ThreadPoolExecutor | None = None

  @property
  def depth(self) -> int:
    """Images waiting for a batch."""
    return len(self._items)

  @property
  def running(self) -> bool:
    return self._task is not None and not self._task.done()

  def start(self) -> None:
    """Starts the batching loop on the running event loop."""
    self._wakeup = asyncio.Event()
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="textrec-infer")
    self._task = asyncio.get_running_loop().create_task(self._loop())

  async def stop(self) -> None:
    """Stops the loop; waiting requests get an error (the server drains them first)."""
    if self._task is not None:
      self._task.cancel()
      await asyncio.gather(self._task, return_exceptions=True)
    while self._items:
      it = self._items.popleft()
      if not it.future.done():
        it.future.set_exception(RuntimeError("the server is shutting down"))
    if self._pool is not None:
      self._pool.shutdown(wait=True)

  async def submit(self, images: Sequence[np.ndarray]) -> list[Any]:
    """Results for `images`, in order; raises QueueFull, or what `fn` raised for an image.

    Cancelling (e.g. a timeout) withdraws the images that wait for a batch.
    """
    if not self.running:
      raise RuntimeError("the batcher is not running")
    if len(self._items) + len(images) > self.max_queue:
      raise QueueFull(f"{len(self._items)} images are waiting (max_queue {self.max_queue})")
    loop = asyncio.get_running_loop()
    items = [_Item(im, loop.create_future()) for im in images]
    self._items.extend(items)
    self._wakeup.set()
    return list(await asyncio.gather(*(it.future for it in items)))

  async def _next_batch(self) -> list[_Item]:
    loop = asyncio.get_running_loop()
    batch: list[_Item] = []
    deadline = None
    while len(batch) < self.max_batch:
      while self._items and len(batch) < self.max_batch:
        it = self._items.popleft()
        if not it.future.done():  # done = withdrawn by its request
          batch.append(it)
      if len(batch) == self.max_batch:
        break
      if batch and deadline is None:
        deadline = loop.time() + self.max_delay_s
      timeout = None if deadline is None else deadline - loop.time()
      if timeout is not None and timeout <= 0:
        break
      self._wakeup.clear()
      if self._items:
        continue
      try:
        await asyncio.wait_for(self._wakeup.wait(), timeout)
      except asyncio.TimeoutError:
        break
    return batch

  async def _run(self, images: list[np.ndarray]) -> list[Any]:
    return list(await asyncio.get_running_loop().run_in_executor(self._pool, self.fn, images))

  async def _loop(self) -> None:
    while True:
      batch = await self._next_batch()
      if self.on_batch is not None:
        self.on_batch(len(batch))
      try:
        outs: list[Any] = await self._run([it.image for it in batch])
      except Exception as e:  # pylint: disable=broad-except
        if len(batch) == 1:
          outs = [e]
        else:  # one bad image should not fail its batch's company
          outs = []
          for it in batch:
            try:
              outs += await self._run([it.image])
            except Exception as e1:  # pylint: disable=broad-except
              outs.append(e1)
      for it, out in zip(batch, outs):
        if it.future.done():
          continue
        if isinstance(out, Exception):
          it.future.set_exception(out)
        else:
          it.future.set_result(out)
