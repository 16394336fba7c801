"""The jitted train step, compiled ahead of time per batch shape in a background thread."""
from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Callable


class StepPrograms:
  """A jitted step compiled per batch shape, ahead of time where the shape is known early.

  `start(state, batch)` lowers and compiles for the batch's shape in a background thread,
  overlapping the evaluation of the pretrained weights; calling runs the compiled program,
  waiting for it or compiling on first use.
  """

  def __init__(self, step_fn: Callable):
    self._fn = step_fn
    self._progs: dict[tuple[int, ...], Any] = {}
    self._pending: dict[tuple[int, ...], concurrent.futures.Future] = {}
    self.compile_seconds: dict[tuple[int, ...], float] = {}

  def _compile(self, shape, state, batch):
    t0 = time.time()
    prog = self._fn.lower(state, batch).compile()
    self.compile_seconds[shape] = time.time() - t0
    return prog

  def start(self, state, batch) -> None:
    shape = tuple(batch["image"].shape)
    if shape not in self._progs and shape not in self._pending:
      fut: concurrent.futures.Future = concurrent.futures.Future()

      def work():
        try:
          fut.set_result(self._compile(shape, state, batch))
        except BaseException as e:  # pylint: disable=broad-except  # re-raised by __call__
          fut.set_exception(e)

      # A daemon thread: a run that fails before its first step exits without waiting.
      threading.Thread(target=work, name="compile-train-step", daemon=True).start()
      self._pending[shape] = fut

  def __call__(self, state, batch):
    shape = tuple(batch["image"].shape)
    prog = self._progs.get(shape)
    if prog is None:
      fut = self._pending.pop(shape, None)
      prog = fut.result() if fut else self._compile(shape, state, batch)
      self._progs[shape] = prog
    return prog(state, batch)
