"""Placeholder for the document orientation classifier (PP-LCNet_x1_0_doc_ori), written by
another part of issue 27; this file is replaced by that one on merge."""
from __future__ import annotations

import os


class DocOrientation:
  """img BGR uint8 [H, W, 3] -> (the image turned upright, angle in {0, 90, 180, 270})."""

  def __call__(self, img):
    raise NotImplementedError


def load_doc_orientation(name: str = "PP-LCNet_x1_0_doc_ori",
                         model_dir: str | os.PathLike | None = None) -> DocOrientation:
  raise NotImplementedError(f"{name}: document orientation is not in this branch yet")
