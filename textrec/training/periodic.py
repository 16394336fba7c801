"""When a periodic action of the training loop (log line, evaluation, checkpoint) runs."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Periodic:
  """`due(step)`: True after every `every`-th step and after the last step (`total`);
  `every` <= 0 means only at the last step."""

  every: int
  total: int

  def due(self, step: int) -> bool:
    return step == self.total or (self.every > 0 and step % self.every == 0)
