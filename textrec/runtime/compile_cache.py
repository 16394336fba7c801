"""JAX's persistent compile cache under textrec's cache root (`<cache root>/jax`), so that a
later process skips most of each compile; a cache directory the user set wins."""
from __future__ import annotations

import os

from textrec import files
from textrec.runtime import settings


def enable() -> None:
  """Switches the cache on, unless the runtime setting `compile_cache` is off or the user
  chose a directory already (jax_compilation_cache_dir)."""
  import jax  # pylint: disable=g-import-not-at-top  (callers without JAX import this module)

  if not settings.get().compile_cache or jax.config.jax_compilation_cache_dir:
    return
  jax.config.update("jax_compilation_cache_dir", os.path.join(files.cache_root(), "jax"))
