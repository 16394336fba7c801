"""Compiled programs kept on disk (textrec.runtime.programs): a later process loads them
instead of tracing and compiling, gets the same outputs, and survives a damaged file."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from textrec.runtime import programs
    calls = []
    def fn(v, x):
      calls.append(1)  # runs only when traced
      return jnp.tanh(x @ v["w"]) + v["b"]
    rng = np.random.default_rng(0)
    v = {"w": rng.normal(size=(5, 3)).astype(np.float32),
         "b": rng.normal(size=(3,)).astype(np.float32)}
    fwd = programs.FlaxForward(fn, v, tag="test:tiny")
    y = fwd(rng.normal(size=(4, 5)).astype(np.float32))
    print(json.dumps(dict(traced=len(calls), from_disk=len(fwd._from_disk), y=y.tolist())))
""")


def _child(cache: str, **env) -> dict:
  out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       env=dict(os.environ, TEXTREC_CACHE=cache, JAX_PLATFORMS="cpu",
                                PYTHONPATH=REPO, **env), check=True, timeout=300)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_program_without_tracing(tmp_path):
  first = _child(str(tmp_path))
  assert first["traced"] == 1 and first["from_disk"] == 0
  files = list((tmp_path / "programs").glob("*.bin"))
  assert len(files) == 1
  second = _child(str(tmp_path))
  assert second["traced"] == 0 and second["from_disk"] == 1
  np.testing.assert_array_equal(np.array(second["y"]), np.array(first["y"]))
  # A damaged file is dropped and the program compiled (and saved) again.
  files[0].write_bytes(b"not a program")
  third = _child(str(tmp_path))
  assert third["traced"] == 1 and third["from_disk"] == 0
  np.testing.assert_array_equal(np.array(third["y"]), np.array(first["y"]))
  assert _child(str(tmp_path))["from_disk"] == 1
  # Switched off: nothing read.
  assert _child(str(tmp_path), TEXTREC_PROGRAM_CACHE="0")["traced"] == 1
