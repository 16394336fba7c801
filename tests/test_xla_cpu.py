"""XLA:CPU kernel choice per program (textrec.runtime.xla_cpu): measured once, recorded on
disk, reused by later compiles and processes, overridable, and the same outputs either way."""
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from textrec.runtime import programs, settings, xla_cpu


def _fn(v, x):
  return jnp.tanh(x @ v["w"]) + v["b"]


def _variables():
  rng = np.random.default_rng(0)
  return {"w": rng.normal(size=(64, 32)).astype(np.float32),
          "b": rng.normal(size=(32,)).astype(np.float32)}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv("TEXTREC_CACHE", str(tmp_path))
  monkeypatch.setattr(settings, "_CURRENT", [settings.Settings()])
  monkeypatch.setattr(xla_cpu, "_MEMORY", {})
  return tmp_path / "programs"


def test_fastest_picks_the_quicker_run():
  calls = {"slow": 0, "quick": 0}

  def run(name, s):
    calls[name] += 1
    time.sleep(s)
  best, ms = xla_cpu.fastest({"slow": lambda: run("slow", 0.02), "quick": lambda: run("quick", 0)})
  assert best == "quick" and ms["slow"] >= 20 > ms["quick"] and calls["slow"] >= 4
  # Calls slower than a quarter of the budget: their first calls decide.
  calls = {"slow": 0, "quick": 0}
  best, ms = xla_cpu.fastest({"slow": lambda: run("slow", 0.2), "quick": lambda: run("quick", 0)},
                             budget_s=0.4)
  assert best == "quick" and calls == {"slow": 1, "quick": 1}


def test_first_compile_measures_records_and_later_compiles_reuse(cache, monkeypatch):
  x = np.random.default_rng(1).normal(size=(8, 64)).astype(np.float32)
  fwd = programs.FlaxForward(_fn, _variables(), tag="test:xla_cpu")
  y = fwd(x)
  records = json.loads((cache / "xla_cpu_libs.json").read_text())
  assert len(records) == 1
  (entry,) = records.values()
  assert entry["choice"] in xla_cpu.VARIANTS and set(entry["ms"]) == set(xla_cpu.VARIANTS)
  assert entry["shape"] == [8, 64] and entry["cpu"] == xla_cpu.cpu_model()
  np.testing.assert_allclose(y, np.tanh(x @ _variables()["w"]) + _variables()["b"], atol=1e-5)

  # Another input shape, and another process (memory cleared): no new measurement.
  def no_measuring(*a, **k):
    raise AssertionError("measured again")
  monkeypatch.setattr(xla_cpu, "compile_measured", no_measuring)
  monkeypatch.setattr(xla_cpu, "_MEMORY", {})
  fwd(x[:3])
  again = programs.FlaxForward(_fn, _variables(), tag="test:xla_cpu")
  np.testing.assert_array_equal(again(x), y)
  assert again._from_disk == {(8, 64)}  # pylint: disable=protected-access
  assert json.loads((cache / "xla_cpu_libs.json").read_text()) == records


def test_one_image_has_its_own_choice(cache, monkeypatch):
  x = np.random.default_rng(3).normal(size=(4, 64)).astype(np.float32)
  fwd = programs.FlaxForward(_fn, _variables(), tag="test:xla_cpu:batch")
  fwd(x)
  fwd(x[:2])  # the same batch class as 4: no new measurement
  measured = []
  real = xla_cpu.compile_measured
  monkeypatch.setattr(xla_cpu, "compile_measured",
                      lambda *a, **k: measured.append(a[2]) or real(*a, **k))
  y = fwd(x[:1])
  assert measured == [(1, 64)]
  records = json.loads((cache / "xla_cpu_libs.json").read_text())
  assert sorted(e["shape"] for e in records.values()) == [[1, 64], [4, 64]]
  np.testing.assert_allclose(y, np.tanh(x[:1] @ _variables()["w"]) + _variables()["b"], atol=1e-5)
  fwd(x[:1].repeat(3, 0))  # batch 3: recorded already
  assert measured == [(1, 64)]


@pytest.mark.parametrize("variant", sorted(xla_cpu.VARIANTS))
def test_forced_variant_is_used_and_agrees(cache, monkeypatch, variant):
  settings.configure(xla_cpu_libs=variant)
  compiled_with = []
  real = jax.stages.Lowered.compile

  def spy(self, compiler_options=None):
    compiled_with.append(dict(compiler_options or {}))
    return real(self, compiler_options=compiler_options)
  monkeypatch.setattr(jax.stages.Lowered, "compile", spy)
  x = np.random.default_rng(2).normal(size=(5, 64)).astype(np.float32)
  y = programs.FlaxForward(_fn, _variables(), tag=f"test:forced:{variant}")(x)
  assert compiled_with == [xla_cpu.VARIANTS[variant]]
  assert not (cache / "xla_cpu_libs.json").exists()
  np.testing.assert_allclose(y, np.tanh(x @ _variables()["w"]) + _variables()["b"], atol=1e-5)


def test_a_wrong_setting_is_named(monkeypatch):
  monkeypatch.setattr(settings, "_CURRENT", [settings.Settings()])
  with pytest.raises(ValueError, match="runtime.xla_cpu_libs='fast': one of auto, default, ynn_off"):
    settings.configure(xla_cpu_libs="fast")
  assert settings.get().xla_cpu_libs == "auto"
