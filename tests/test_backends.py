"""Runtimes for exported models (textrec/inference/runtimes.py, openvino_backend.py,
auto_backend.py): onnxruntime and OpenVINO read the same ONNX file and agree with JAX on the
same weights; backend auto times them once per machine and records its choice.

The default run uses the official PP-OCRv4 mobile recognizer's ONNX wrapped as an inference
dir (onnx_backend.official_dir: no export needed) against JAX on the same official weights;
the slow cases export the official weights with jax2onnx and read all IC15 val crops.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import ic15
import rendered_words
from textrec.errors import MissingExtraError, UsageError
from textrec.formats import inference_yml
from textrec.inference import auto_backend, onnx_backend, predictor, preprocess, runtimes

NAME = "PP-OCRv4_mobile_rec"
# max |Δprob| of onnxruntime / OpenVINO (f32) against JAX on one batch: float32 round-off of
# different kernels (measured ~1e-5 here)
PROB_ATOL = 2e-4


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory):
  return onnx_backend.official_dir(NAME, str(tmp_path_factory.mktemp("rec") / "official"))


@pytest.fixture(scope="module")
def words():
  return rendered_words.images()


@pytest.fixture(scope="module")
def jax_model():
  return predictor.create_model(NAME, backend="jax", batch_size=32)


def test_names_precisions_and_refusals(tmp_path):
  assert runtimes.canonical("onnx") == "onnxruntime"
  assert [runtimes.canonical(b) for b in runtimes.BACKENDS] == list(runtimes.BACKENDS)
  with pytest.raises(UsageError, match="backend must be one of"):
    runtimes.canonical("tensorrt")
  with pytest.raises(UsageError, match="int8 needs a model quantized beforehand"):
    runtimes.check_precision("openvino", "int8")
  with pytest.raises(UsageError, match="backend onnxruntime runs"):
    runtimes.check_precision("onnxruntime", "bf16")
  assert runtimes.check_precision("openvino", "bf16") == "bf16"
  (tmp_path / "best_accuracy.pdparams").write_bytes(b"")
  with pytest.raises(UsageError, match="holds pdparams weights: export them"):
    predictor.load_backend(NAME, str(tmp_path / "best_accuracy.pdparams"), backend="openvino")


def test_missing_openvino_names_the_extra(official_dir, monkeypatch):
  monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
  with pytest.raises(MissingExtraError, match=r"textrec\[openvino\]"):
    predictor.create_model(NAME, model_dir=official_dir, backend="openvino")


def test_openvino_import_sends_no_telemetry():
  """Importing openvino alone forks a process that posts to Google Analytics
  (openvino_telemetry); textrec's import of it forks nothing and leaves the module usable."""
  pytest.importorskip("openvino")
  code = textwrap.dedent("""
      import os, sys, time
      forks = []
      os.register_at_fork(before=lambda: forks.append(1))
      from textrec.inference import openvino_backend
      openvino_backend.openvino_module().Core()
      time.sleep(0.5)
      try:
        import openvino_telemetry  # the user's own import still works
      except ImportError:  # not installed here
        pass
      print("forks", len(forks))
  """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, timeout=120).stdout.split()
  assert out[-2:] == ["forks", "0"], out


def test_onnxruntime_and_openvino_match_jax(official_dir, words, jax_model):
  """Same texts on the rendered words; probabilities within PROB_ATOL of JAX's on a batch."""
  imgs = [im for im, _ in words]
  want = jax_model.recognize(imgs)
  x = np.stack([preprocess.resize_norm(im, preprocess.MIN_WIDTH) for im in imgs[:8]])
  want_p = jax_model.probs_fn(x)
  assert sum(t == w for (t, _), (_, w) in zip(want, words)) >= 24  # JAX reads them
  for backend in ("onnxruntime", "openvino"):
    m = predictor.create_model(NAME, model_dir=official_dir, backend=backend)
    assert m.model_settings == {"backend": backend, "precision": "f32"}
    got = m.recognize(imgs)
    assert [t for t, _ in got] == [t for t, _ in want], backend
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=PROB_ATOL)
    np.testing.assert_allclose(m.probs_fn(x), want_p, atol=PROB_ATOL, err_msg=backend)
    [r] = list(m.predict(imgs[0]))
    assert r.json["res"]["model_settings"] == {"backend": backend, "precision": "f32"}
  # an export of the official weights runs on JAX on request (through those weights)
  on_jax = predictor.create_model(NAME, model_dir=official_dir, backend="jax", batch_size=32)
  assert on_jax.model_settings["backend"] == "jax" and on_jax.recognize(imgs) == want


def test_openvino_bf16_shows_in_settings(official_dir, words):
  """bf16 is what was asked for (model settings say so) and still reads the words."""
  m = predictor.create_model(NAME, model_dir=official_dir, backend="openvino", precision="bf16")
  assert m.model_settings == {"backend": "openvino", "precision": "bf16"}
  hint = lambda m: m.probs_fn.forward_nchw.run.compiled.get_property(  # noqa: E731
      "INFERENCE_PRECISION_HINT").to_string()
  assert hint(m) == "bf16"
  assert hint(predictor.create_model(NAME, model_dir=official_dir, backend="openvino")) == "f32"
  got = m.recognize([im for im, _ in words])
  assert sum(t == w for (t, _), (_, w) in zip(got, words)) >= 24


def test_auto_picks_a_candidate_and_records_it(official_dir, words, tmp_path, monkeypatch,
                                               capsys):
  """An export (here of weights JAX cannot read): auto times onnxruntime and openvino, prints
  one line, records the winner; the next load reads the record silently."""
  monkeypatch.setenv("TEXTREC_CACHE", str(tmp_path / "cache"))
  d = tmp_path / "export"
  d.mkdir()
  os.symlink(os.path.join(official_dir, "inference.onnx"), d / "inference.onnx")
  cfg = inference_yml.read(official_dir)
  cfg["Global"]["source"] = "a fine-tuned checkpoint"
  inference_yml.write(d / "inference.yml", cfg)
  with pytest.raises(UsageError, match="that JAX cannot read"):
    predictor.create_model(NAME, model_dir=str(d), backend="jax")

  m = predictor.create_model(NAME, model_dir=str(d))  # backend auto
  line = capsys.readouterr().err
  assert m.backend in ("onnxruntime", "openvino") and f"backend auto: {m.backend}" in line
  record = json.loads((tmp_path / "cache" / "programs" / auto_backend.RECORD_FILE).read_text())
  [entry] = record.values()
  assert entry["choice"] == m.backend and set(entry["ms"]) == {"onnxruntime", "openvino"}
  assert m.model_settings == {"backend": m.backend, "precision": "f32"}

  auto_backend._MEMORY.clear()  # as a new process: from the file  # pylint: disable=protected-access
  again = predictor.create_model(NAME, model_dir=str(d), backend="auto")
  assert again.backend == m.backend and "backend auto" not in capsys.readouterr().err
  imgs = [im for im, _ in words[:8]]
  assert again.recognize(imgs) == m.recognize(imgs)
  # bf16 runs on openvino alone: no timing
  assert predictor.create_model(NAME, model_dir=str(d), precision="bf16").backend == "openvino"


def test_pipeline_on_onnx_runtimes(words):
  """The OCR pipeline with every model on onnxruntime, then OpenVINO (official ONNX files):
  same boxes and texts; each result's model_settings names the backends."""
  from textrec.pipelines import ocr  # pylint: disable=g-import-not-at-top

  page = np.full((360, 640, 3), 255, np.uint8)
  for i, word in enumerate(("HOTEL", "Station", "Welcome", "PARKING", "2024")):
    cv2.putText(page, word, (30 + 90 * (i % 2), 60 + 60 * i), cv2.FONT_HERSHEY_DUPLEX, 1.4,
                (20, 20, 20), 2, cv2.LINE_AA)
  res = {}
  for backend in ("onnxruntime", "openvino"):
    pipe = ocr.create_pipeline(ocr_version="PP-OCRv4", backend=backend,
                               use_doc_orientation_classify=False)
    res[backend] = next(pipe.predict(page)).json["res"]
    assert res[backend]["model_settings"]["backend"] == {"det": backend, "cls": backend,
                                                         "rec": backend}
    assert res[backend]["model_settings"]["precision"] == "f32"
  a, b = res["onnxruntime"], res["openvino"]
  assert a["rec_texts"] == b["rec_texts"] and "Welcome" in a["rec_texts"]
  np.testing.assert_allclose(a["dt_polys"], b["dt_polys"], atol=1)


# ----------------------------------------------------------------------------- slow: IC15


@pytest.fixture(scope="module", params=["PP-OCRv4_mobile_rec", "PP-OCRv5_mobile_rec"])
def jax_export(request, tmp_path_factory):
  """(name, the official weights exported by textrec (jax2onnx), JAX on the same weights)."""
  from textrec.export import export  # pylint: disable=g-import-not-at-top  (JAX)

  name = request.param
  out = str(tmp_path_factory.mktemp("export") / "inference")
  module, variables, cs, source = export.load_weights(name)
  export.export(name, module, variables, cs, out, "onnx", source=source, check=False)
  return name, out, predictor.create_model(name, backend="jax")


def _read_in_chunks(model, imgs, order, chunk: int = 128):
  """model.recognize over `imgs` in chunks of `order` (crops sorted by width bucket: few
  compiled shapes under JAX, bounded memory) -> [(text, score)] in input order."""
  out = [None] * len(imgs)
  for s in range(0, len(order), chunk):
    idx = order[s:s + chunk]
    for i, r in zip(idx, model.recognize([imgs[i] for i in idx], chunk)):
      out[i] = r
  return out


@pytest.mark.slow
def test_same_text_on_all_ic15_val_crops(jax_export, ic15_dir):
  """Every IC15 val crop reads the same on onnxruntime and OpenVINO (f32) as on JAX."""
  name, out, jax_model = jax_export
  lines = ic15.val_lines(ic15_dir)
  imgs = [cv2.imread(str(ic15_dir / ln.split("\t")[0]), cv2.IMREAD_COLOR) for ln in lines]
  order = sorted(range(len(imgs)), key=lambda i: (preprocess.predict_width(imgs[i]), i))
  want = _read_in_chunks(jax_model, imgs, order)
  for backend in ("onnxruntime", "openvino"):
    m = predictor.create_model(name, model_dir=out, backend=backend)
    got = _read_in_chunks(m, imgs, order)
    same = sum(g[0] == w[0] for g, w in zip(got, want))
    dscore = max(abs(g[1] - w[1]) for g, w in zip(got, want))
    print(f"{name} {backend}: {same}/{len(imgs)} same text as JAX; max |Δscore| {dscore:.1e}")
    assert same == len(imgs), (name, backend, same)
