"""Export for serving (textrec/export/export.py, textrec/inference/onnx_backend.py).

References: our JAX model (the default "fast" conv implementation, as users run it) for the
exported ONNX / SavedModel, and the official ONNX (onnxruntime) for the exported official
weights. Exports once per module (official weights, all formats; tiny model from an Orbax
checkpoint through the CLI entry point).
"""
from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import ic15  # noqa: E402
import rendered_words  # noqa: E402
import train_utils  # noqa: E402
from textrec import errors  # noqa: E402
from textrec.errors import UsageError  # noqa: E402
from textrec.export import export  # noqa: E402
from textrec.formats import inference_yml  # noqa: E402
from textrec.inference import onnx_backend, postprocess, preprocess  # noqa: E402
from textrec.models import zoo  # noqa: E402

NAME = "PP-OCRv4_mobile_rec"
# (batch, width) cases: both batch sizes and three widths through the dynamic axes, each
# shape one JAX (and one TensorFlow) compile.
SHAPES = ((1, 80), (7, 320), (1, 1000))
TOL = 1e-4


@pytest.fixture(scope="module")
def official_export(tmp_path_factory):
  """Exports the official weights: (out_dir, module, variables, charset)."""
  module, variables, cs, source = export.load_weights(NAME)
  out = str(tmp_path_factory.mktemp("export") / "inference")
  export.export(NAME, module, variables, cs, out, "all", source=source, check=False)
  return out, module, variables, cs


def _val_images(ic15_dir, n: int) -> list[np.ndarray]:
  import cv2  # pylint: disable=g-import-not-at-top

  lines = (ic15_dir / "val.txt").read_text(encoding="utf-8").splitlines()[:n]
  imgs = [cv2.imread(str(ic15_dir / ln.split("\t")[0]), cv2.IMREAD_COLOR) for ln in lines]
  assert all(im is not None for im in imgs), "unreadable IC15 image"
  return imgs


@pytest.fixture(scope="module")
def cases(official_export, request):
  """[(label, x f32[B, 3, 48, W], JAX probs)] for random inputs, rendered words and (when
  the IC15 dataset is present) real crops."""
  _, module, variables, _ = official_export
  fn = jax.jit(export.probs_fn(module, variables))  # as JAX runs it: BN unfolded, fast convs
  rng = np.random.default_rng(0)
  real = None
  try:
    real = _val_images(request.getfixturevalue("ic15_dir"), max(b for b, _ in SHAPES))
  except pytest.skip.Exception:
    pass
  words = [im for im, _ in rendered_words.images()]
  out = []
  for b, w in SHAPES:
    xs = {"random": rng.uniform(-1, 1, (b, 3, preprocess.HEIGHT, w)).astype(np.float32),
          "words": np.stack([preprocess.resize_norm(im, w) for im in words[:b]]).transpose(
              0, 3, 1, 2)}
    if real is not None:
      xs["ic15"] = np.stack([preprocess.resize_norm(im, w) for im in real[:b]]).transpose(
          0, 3, 1, 2)
    for kind, x in xs.items():
      out.append((f"{kind} B={b} W={w}", x, np.asarray(fn(x))))
  return out


def _texts(probs, cs):
  return [t for t, _ in postprocess.ctc_greedy_decode(probs, cs)]


def _check_against_jax(run_fn, cases, cs):
  worst = 0.0
  for label, x, ref in cases:
    got = run_fn(x)
    assert got.shape == ref.shape, label
    d = float(np.abs(got - ref).max())
    worst = max(worst, d)
    assert d <= TOL, f"{label}: max |Δprob| {d:.2e} > {TOL}"
    assert _texts(got, cs) == _texts(ref, cs), label
  return worst


def test_onnx_matches_jax(official_export, cases):
  out, _, _, cs = official_export
  forward, cs2, meta = onnx_backend.load_inference_dir(out)
  assert cs2 == cs and meta["model_name"] == NAME and meta["height"] == 48
  worst = _check_against_jax(forward, cases, cs)
  print(f"ONNX vs JAX: max |Δprob| = {worst:.2e} over {len(cases)} cases")


def test_saved_model_matches_jax(official_export, cases):
  out, _, _, cs = official_export
  run_fn = export.load_saved_model(os.path.join(out, export.SAVED_MODEL_DIR))
  worst = _check_against_jax(run_fn, cases, cs)
  print(f"SavedModel vs JAX: max |Δprob| = {worst:.2e} over {len(cases)} cases")


def test_onnx_graph_is_deploy_form(official_export):
  out, _, _, cs = official_export
  from textrec.weights import official, onnx_import  # pylint: disable=g-import-not-at-top

  path = os.path.join(out, inference_yml.ONNX_FILE)
  model = onnx.load(path)
  onnx.checker.check_model(model, full_check=True)
  ops = [n.op_type for n in model.graph.node]
  ref = onnx.load(official.official_onnx_path(NAME))
  # Plain Conv nodes, as many as the official deploy graph has; no NRTR (one output).
  assert ops.count("Conv") == [n.op_type for n in ref.graph.node].count("Conv")
  inits = {t.name for t in model.graph.initializer}
  assert not [n for n in model.graph.node if n.op_type == "Einsum" and n.input[1] in inits]
  dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa
  (inp,), (outp,) = model.graph.input, model.graph.output
  b, c, h, w = dims(inp)
  assert isinstance(b, str) and isinstance(w, str) and (c, h) == (3, 48)
  assert dims(outp)[-1] == cs.num_classes and isinstance(dims(outp)[1], str)
  assert onnx_import.charset_from_onnx(model) == cs
  size, ref_size = os.path.getsize(path), os.path.getsize(official.official_onnx_path(NAME))
  print(f"exported ONNX {size / 1e6:.2f} MB, official {ref_size / 1e6:.2f} MB")
  assert abs(size - ref_size) < 0.05 * ref_size


@pytest.mark.parametrize("n", ic15.sizes(100))
def test_same_text_as_official_onnx(official_export, ic15_dir, n):
  """Official weights exported by us vs the official ONNX on IC15 val crops: the first
  TEXTREC_IC15_N (default 100), all 2077 in the slow case."""
  _same_text(official_export, _val_images(ic15_dir, n or ic15.ALL), "IC15 crops")


def test_same_text_as_official_onnx_on_rendered_words(official_export):
  """The same on words drawn at test time: runs without the IC15 dataset."""
  _same_text(official_export, [im for im, _ in rendered_words.images()], "rendered words")


def _same_text(official_export, imgs: list[np.ndarray], what: str) -> None:
  out, _, _, cs = official_export
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  ours = onnx_backend.load_inference_dir(out, providers=["CPUExecutionProvider"])[0]
  ref = ort.InferenceSession(official.official_onnx_path(NAME),
                             providers=["CPUExecutionProvider"])
  ref_in = ref.get_inputs()[0].name
  widths = [preprocess.predict_width(im) for im in imgs]
  diff_text, worst = [], 0.0
  for w in sorted(set(widths)):
    idx = [i for i, wi in enumerate(widths) if wi == w]
    for s in range(0, len(idx), 16):
      part = idx[s:s + 16]
      x = np.stack([preprocess.resize_norm(imgs[i], w) for i in part]).transpose(0, 3, 1, 2)
      p_ours, p_ref = ours(x), ref.run(None, {ref_in: x})[0]
      worst = max(worst, float(np.abs(p_ours - p_ref).max()))
      diff_text += [(i, a, b) for i, a, b in zip(part, _texts(p_ours, cs), _texts(p_ref, cs))
                    if a != b]
  print(f"vs official ONNX on {len(imgs)} {what}: max |Δprob| = {worst:.2e}, "
        f"{len(diff_text)} texts differ")
  assert not diff_text, diff_text[:5]


def test_onnx_backend_runs_without_jax(official_export, tmp_path):
  out, _, _, _ = official_export
  x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 48, 96)).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  code = (
      "import sys, numpy as np\n"
      "for m in ('jax', 'flax', 'tensorflow'): sys.modules[m] = None\n"
      "from textrec.inference import onnx_backend\n"
      f"f, cs, meta = onnx_backend.load_inference_dir({out!r})\n"
      f"np.save({str(tmp_path / 'p.npy')!r}, f(np.load({str(tmp_path / 'x.npy')!r})))\n")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
  r = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True,
                     text=True, timeout=120)
  assert r.returncode == 0, r.stderr[-2000:]
  got = np.load(tmp_path / "p.npy")
  want = onnx_backend.load_inference_dir(out)[0](x)
  assert got.shape == (2, 12, 6625)
  np.testing.assert_array_equal(got, want)


def test_yml_carries_paddlex_fields(official_export):
  """Stacks that read PaddleX's inference.yml read ours: model name, RecResizeImg shape,
  CTCLabelDecode and PaddleX's character_dict (without the space its decoder appends); our
  own reader gives back the same dictionary; the ONNX metadata keeps RapidOCR's list."""
  import onnx  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top

  out, _, _, cs = official_export
  cfg = yaml.safe_load(open(os.path.join(out, "inference.yml"), encoding="utf-8"))
  assert cfg["Global"]["model_name"] == NAME
  ops = {k: v for op in cfg["PreProcess"]["transform_ops"] for k, v in op.items()}
  assert ops["RecResizeImg"]["image_shape"] == [3, 48, 320]
  assert ops["DecodeImage"]["img_mode"] == "BGR"
  assert cfg["PostProcess"]["name"] == "CTCLabelDecode"
  chars = cfg["PostProcess"]["character_dict"]
  assert len(chars) == 6623 and " " not in chars and chars + [" "] == list(cs.chars)
  assert onnx_backend.load_inference_dir(out)[1] == cs
  meta = {p.key: p.value for p in onnx.load(os.path.join(out, "inference.onnx"),
                                            load_external_data=False).metadata_props}
  assert meta["character"].split("\n") == chars


def test_onnx_backend_errors(tmp_path, official_export):
  with pytest.raises(FileNotFoundError, match="inference.yml"):
    onnx_backend.load_inference_dir(tmp_path)
  (tmp_path / "inference.yml").write_text("Global: [unclosed\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"inference.yml line \d+"):
    onnx_backend.load_inference_dir(tmp_path)
  (tmp_path / "inference.yml").write_text("Global: {model_name: x}\n", encoding="utf-8")
  with pytest.raises(ValueError, match="Global.files"):
    onnx_backend.load_inference_dir(tmp_path)
  out = official_export[0]
  forward = onnx_backend.load_inference_dir(out)[0]
  with pytest.raises(ValueError, match=r"\[B, 3, 48, W\]"):
    forward(np.zeros((1, 48, 320, 3), np.float32))


# ----------------------------------------------------------------------------- CLI, checkpoint


def _tiny_config(out_dir: str, weight_path: str, fmt: str):
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, os.path.join(repo, "configs"))
  import tiny  # pylint: disable=g-import-not-at-top

  c = tiny.get_config()
  c.mode = "export"
  c.output_dir = out_dir
  c.export.weight_path = weight_path
  c.export.format = fmt
  return c


def test_export_checkpoint_via_run(tmp_path):
  """Training-form tiny model (random BN stats) in an Orbax checkpoint -> export mode ->
  deploy-form ONNX that matches the training-form JAX model, NRTR dropped."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from textrec import charset as charset_lib  # pylint: disable=g-import-not-at-top
  from textrec.formats import checkpoint  # pylint: disable=g-import-not-at-top
  from textrec.models import registry  # pylint: disable=g-import-not-at-top
  from textrec.models import recognizer  # pylint: disable=g-import-not-at-top

  cs = charset_lib.from_chars(list("0123456789abcdefghijklmnopqrstuvwxyz"))
  model = registry.get_model("tiny_rec")(num_classes=cs.num_classes)
  # Random values for every variable (numpy, no init compile), BN statistics included.
  v = train_utils.random_variables(recognizer.variable_shapes(model, width=128), seed=0)
  rng = np.random.default_rng(0)
  assert any("gtc_head" in jax.tree_util.keystr(p)
             for p, _ in jax.tree_util.tree_flatten_with_path(v)[0])
  cfg = _tiny_config(str(tmp_path / "run"), str(tmp_path / "ckpt"), "onnx")
  ck = checkpoint.Checkpointer(str(tmp_path / "ckpt"))
  ck.save_best(7, v, dict(model="tiny_rec", deploy=False, chars=list(cs.chars),
                          num_classes=cs.num_classes))
  ck.wait()
  ck.close()

  assert export.run(cfg) == 0
  inf = tmp_path / "run" / "inference"
  forward, cs2, meta = onnx_backend.load_inference_dir(inf)
  assert cs2 == cs and meta["model_name"] == "tiny_rec"
  x = rng.uniform(-1, 1, (3, 3, 48, 128)).astype(np.float32)
  ref = np.asarray(jax.jit(lambda v, x: jax.nn.softmax(
      model.apply(v, x, train=False)["ctc_logits"], -1))(v, jnp.asarray(x.transpose(0, 2, 3, 1))))
  got = forward(x)
  assert got.shape == ref.shape and float(np.abs(got - ref).max()) <= TOL
  # Deploy form only: the ONNX holds no more weights than the fused, NRTR-free variables.
  _, dv, _, _ = export.load_weights("tiny_rec", str(tmp_path / "ckpt"))
  n_deploy = sum(a.size for a in jax.tree.leaves(dv))
  n_train = sum(np.size(a) for a in jax.tree.leaves(v))
  n_onnx = sum(int(np.prod(t.dims)) for t in onnx.load(str(inf / inference_yml.ONNX_FILE)).graph.initializer)
  assert n_deploy < n_train and n_onnx <= n_deploy + 1000, (n_onnx, n_deploy, n_train)


V6_TINY = "PP-OCRv6_tiny_rec"


def _model_config(config_file: str, out_dir: str, weight_path: str, fmt: str):
  import importlib  # pylint: disable=g-import-not-at-top

  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, os.path.join(repo, "configs"))
  c = importlib.import_module(config_file).get_config()
  c.mode = "export"
  c.output_dir = out_dir
  c.export.weight_path = weight_path
  c.export.format = fmt
  return c


def _random_checkpoint(tmp, name: str, calibrate_on: np.ndarray | None = None):
  """Random training-form variables of recognizer `name` (BN statistics and the
  re-parameterisable branches too) in an Orbax checkpoint under tmp/ckpt: (module,
  variables, charset). calibrate_on: an input x f32[B, 3, 48, W] on which the CTC fc is
  scaled to logits of std 1 (random backbones whose features blow up otherwise give one-hot
  probabilities, which any two runtimes agree on)."""
  from textrec import charset as charset_lib  # pylint: disable=g-import-not-at-top
  from textrec.formats import checkpoint  # pylint: disable=g-import-not-at-top
  from textrec.models import recognizer, registry  # pylint: disable=g-import-not-at-top

  cs = charset_lib.from_chars(list("0123456789abcdefghijklmnopqrstuvwxyz"))
  model = registry.get_model(name)(num_classes=cs.num_classes)
  v = train_utils.random_variables(recognizer.variable_shapes(model, width=128), seed=1)
  if calibrate_on is not None:
    fc = v["params"]["head"]["ctc_head"]["fc"]
    std = float(np.std(_reference(model, v, calibrate_on, logits=True)))
    fc["kernel"], fc["bias"] = fc["kernel"] / std, fc["bias"] / std
  ck = checkpoint.Checkpointer(str(tmp / "ckpt"))
  ck.save_best(1, v, dict(model=name, deploy=False, chars=list(cs.chars),
                          num_classes=cs.num_classes))
  ck.wait()
  ck.close()
  return model, v, cs


@pytest.fixture(scope="module")
def v6_tiny_export(tmp_path_factory):
  """PP-OCRv6_tiny_rec from a random checkpoint (_random_checkpoint), exported to ONNX
  through `--config=configs/v6_tiny.py --config.mode=export`: (inference dir, module,
  variables, charset)."""
  tmp = tmp_path_factory.mktemp("v6_tiny")
  model, v, cs = _random_checkpoint(tmp, V6_TINY)
  assert export.run(_model_config("v6_tiny", str(tmp / "run"), str(tmp / "ckpt"), "onnx")) == 0
  return str(tmp / "run" / "inference"), model, v, cs


def _reference(model, v, x_nchw: np.ndarray, logits: bool = False) -> np.ndarray:
  """The training-form JAX model's CTC probabilities (or logits; re-parameterisation not
  applied)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  fn = jax.jit(lambda v, x: model.apply(v, x, train=False)["ctc_logits"])
  out = np.asarray(fn(v, jnp.asarray(x_nchw.transpose(0, 2, 3, 1))))
  return out if logits else np.asarray(jax.nn.softmax(out, -1))


def test_v6_tiny_rec_export_matches_jax(v6_tiny_export):
  """The exported ONNX (deploy form: fused, guide conv, no NRTR) vs the training-form JAX
  model, and its inference.yml: the model's name and dictionary."""
  import yaml  # pylint: disable=g-import-not-at-top

  inf, model, v, cs = v6_tiny_export
  forward, cs2, meta = onnx_backend.load_inference_dir(inf)
  assert cs2 == cs and meta["model_name"] == V6_TINY
  cfg = yaml.safe_load(open(os.path.join(inf, inference_yml.YML_FILE), encoding="utf-8"))
  assert cfg["Global"]["model_name"] == V6_TINY
  assert cfg["PostProcess"]["character_dict"] + [" "] == list(cs.chars)
  x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 48, 160)).astype(np.float32)
  ref, got = _reference(model, v, x), forward(x)
  d = float(np.abs(got - ref).max())
  print(f"{V6_TINY} ONNX vs JAX (training form): max |Δprob| = {d:.2e}")
  assert got.shape == ref.shape and d <= TOL


@pytest.mark.slow
def test_v5_mobile_rec_saved_model_matches_jax(tmp_path):
  """SavedModel of a PP-OCRv5 recognizer (random checkpoint, through the CLI's export).
  (PP-OCRv6's GELU does not load in TensorFlow 2.21: JAX serialises erf as a StableHLO
  composite newer than TF's.)"""
  name = "PP-OCRv5_mobile_rec"
  x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 48, 200)).astype(np.float32)
  model, v, _ = _random_checkpoint(tmp_path, name, calibrate_on=x)
  cfg = _model_config("v5_mobile", str(tmp_path / "run"), str(tmp_path / "ckpt"), "saved_model")
  assert export.run(cfg) == 0
  run_fn = export.load_saved_model(str(tmp_path / "run" / "inference" / export.SAVED_MODEL_DIR))
  ref = _reference(model, v, x)
  assert float(np.median(ref.max(-1))) < 0.99  # not one-hot
  d = float(np.abs(np.asarray(run_fn(x)) - ref).max())
  print(f"{name} SavedModel vs JAX (training form): max |Δprob| = {d:.2e}")
  assert d <= TOL


def test_cli_serves_v6_exports_with_ocr_version(v6_tiny_export, aux_dir, ocr_images_dir):
  """`--config=configs/ocr.py --config.mode=serve` with ocr_version PP-OCRv6 on the exports
  (PP-OCRv6_tiny_rec, PP-OCRv6_tiny_det, the textline and page orientation models): both
  endpoints answer, /ocr with the lines the same pipeline gives in this process."""
  import signal  # pylint: disable=g-import-not-at-top
  import textrec  # pylint: disable=g-import-not-at-top
  from textrec.serving.client import Client  # pylint: disable=g-import-not-at-top

  inf = v6_tiny_export[0]
  dirs = {k: aux_dir(kind, name)[0] for k, kind, name in (
      ("det", "det", "PP-OCRv6_tiny_det"), ("cls", "cls", "PP-LCNet_x1_0_textline_ori"),
      ("doc", "cls", "PP-LCNet_x1_0_doc_ori"))}
  image = str(ocr_images_dir / "ger_2.jpg")
  want = next(textrec.create_pipeline(
      "OCR", ocr_version="PP-OCRv6", rec_model=V6_TINY, rec_model_dir=inf,
      det_model="PP-OCRv6_tiny_det", det_model_dir=dirs["det"], cls_model_dir=dirs["cls"],
      doc_orientation_model_dir=dirs["doc"]).predict(image))
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=repo, TEXTREC_HUGEPAGES="0")
  proc = subprocess.Popen(
      [sys.executable, "-m", "textrec.main", "--config=configs/ocr.py", "--config.mode=serve",
       "--config.ocr.ocr_version=PP-OCRv6", f"--config.model.name={V6_TINY}",
       f"--config.serve.model_dir={inf}", "--config.serve.port=0",
       "--config.ocr.det_model=PP-OCRv6_tiny_det", f"--config.ocr.det_model_dir={dirs['det']}",
       f"--config.ocr.cls_model_dir={dirs['cls']}",
       f"--config.ocr.doc_orientation_model_dir={dirs['doc']}"],
      cwd=repo, env=env, stderr=subprocess.PIPE, text=True)
  try:
    line, lines = "", []
    while " on http://" not in line:
      line = proc.stderr.readline()
      lines.append(line)
      assert line or proc.poll() is None, "server exited: " + "".join(lines)[-2000:]
    assert V6_TINY in line and "exported:" in line
    url = line.split(" on ")[1].split()[0]
    with Client(url) as c:
      crop = np.full((48, 160, 3), 255, np.uint8)
      (rec,) = c.recognize([crop])
      assert set(rec) == {"rec_text", "rec_score"}
      res = c.ocr(image)
    assert res["rec_texts"] == want.rec_texts and len(res["rec_polys"]) >= 2
    assert res["rec_polys"] == want.json["res"]["rec_polys"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_run_rejects_bad_config(tmp_path):
  with pytest.raises(UsageError, match="export.format"):
    export.run(_tiny_config(str(tmp_path), "", "tflite"))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    export.run(_tiny_config(str(tmp_path), str(tmp_path / "nope"), "onnx"))


def test_export_of_paddle_weights_matches_paddle(paddle_ref_dir, tmp_path):
  """PaddleOCR training-form weights (replayed fixture) -> export (re-parameterised, NRTR
  dropped) -> onnxruntime vs the probabilities PaddleOCR's own deploy form computed."""
  from paddle_ref import replay  # pylint: disable=g-import-not-at-top
  from textrec.models import recognizer  # pylint: disable=g-import-not-at-top
  from textrec.weights import paddle as pw  # pylint: disable=g-import-not-at-top

  state, io = replay(paddle_ref_dir, NAME, stop_after="head.ctc_head.fc.bias")
  from textrec.models.registry import get_model  # pylint: disable=g-import-not-at-top

  train = get_model(NAME)(num_classes=6625, with_nrtr=False)
  variables = pw.paddle_to_flax(state, recognizer.variable_shapes(train, with_nrtr=False))
  module = export.inference_module(NAME, 6625)
  with pytest.raises(ValueError, match="do not fit"):  # training form: needs fusing
    export.fit_variables(module, variables)
  deploy = export.fit_variables(module, zoo.to_deploy(NAME, variables))
  from textrec.charset import Charset  # pylint: disable=g-import-not-at-top

  cs = Charset(tuple(f"c{i}" for i in range(6624)))
  export.export(NAME, module, deploy, cs, str(tmp_path), "onnx", check=False)
  probs = onnx_backend.load_inference_dir(tmp_path)[0](io["x"])
  np.testing.assert_allclose(probs, io["probs_deploy_form"], atol=1e-5, rtol=1e-3)
  worst = float(np.abs(probs - io["probs_deploy_form"]).max())
  print(f"exported Paddle-fixture weights vs PaddleOCR deploy form: max |Δprob| = {worst:.2e}")
  assert worst <= TOL


# ----------------------------------------------------------------------------- OCR pipeline

# The pipeline's det / cls models: the default run exports the small ones, `slow` the rest.
AUX = (("det", "PP-OCRv6_tiny_det"), ("cls", "PP-LCNet_x1_0_textline_ori"),
       ("cls", "PP-LCNet_x1_0_doc_ori"))
AUX_SLOW = (("det", "PP-OCRv5_mobile_det"), ("det", "PP-OCRv6_small_det"))


@pytest.fixture(scope="module")
def aux_dir(tmp_path_factory):
  """(kind, name) -> (exported dir, official variables): each model exported once per module,
  on first use, without the exporter's own check (the tests below check it)."""
  from textrec.export import aux_export  # pylint: disable=g-import-not-at-top
  from textrec.weights import pipeline_weights  # pylint: disable=g-import-not-at-top

  cache = {}

  def get(kind: str, name: str):
    if name not in cache:
      variables, source = pipeline_weights.load_aux(name, kind)
      d = str(tmp_path_factory.mktemp(name))
      aux_export.export_aux(name, kind, variables, d, source=source, check=False)
      cache[name] = (d, variables)
    return cache[name]
  return get


def _aux_inputs(kind: str, name: str) -> list[np.ndarray]:
  from textrec.export import aux_export  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(3)
  return [rng.normal(0, 1, s).astype(np.float32)
          for s in aux_export.spec_of(name, kind).check_shapes]


@pytest.mark.parametrize("kind,name", AUX + tuple(pytest.param(*a, marks=pytest.mark.slow)
                                                  for a in AUX_SLOW),
                         ids=[n for _, n in AUX + AUX_SLOW])
def test_aux_export_matches_jax_and_official_onnx(aux_dir, kind, name):
  """Each det / cls export: onnxruntime on it vs the JAX forward (the exporter's self-check)
  and vs onnxruntime on the official ONNX, on the model's check shapes."""
  from textrec.export import aux_export  # pylint: disable=g-import-not-at-top
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  d, variables = aux_dir(kind, name)
  path = os.path.join(d, inference_yml.ONNX_FILE)
  err = aux_export.check_against_jax(name, kind, variables, path)
  ours = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
  ref = ort.InferenceSession(official.official_onnx_path(name), providers=["CPUExecutionProvider"])
  worst = 0.0
  for x in _aux_inputs(kind, name):
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    a = ours.run(None, {"x": nchw})[0]
    b = ref.run(None, {ref.get_inputs()[0].name: nchw})[0]
    assert a.shape == b.shape
    worst = max(worst, float(np.abs(a - b).max()))
  print(f"{name} export: max |Δ| vs JAX {err:.2e}, vs the official ONNX {worst:.2e}")
  assert err <= TOL and worst <= TOL


@pytest.mark.parametrize("kind,name", AUX, ids=[n for _, n in AUX])
def test_aux_yml_takes_the_pipelines_settings(aux_dir, kind, name):
  """inference.yml: the model's input size, pre- and post-processing, as the pipeline's
  tables hold them; the pipeline's loaders take the directory back (onnxruntime)."""
  import yaml  # pylint: disable=g-import-not-at-top

  from textrec.pipelines import cls_preprocess, doc_orientation, forward, ocr_versions  # pylint: disable=g-import-not-at-top
  from textrec.pipelines import orientation, text_detection  # pylint: disable=g-import-not-at-top

  d, _ = aux_dir(kind, name)
  cfg = yaml.safe_load(open(os.path.join(d, inference_yml.YML_FILE), encoding="utf-8"))
  assert cfg["Global"]["model_name"] == name and inference_yml.model_kind(cfg) == kind
  ops = {k: v for op in cfg["PreProcess"]["transform_ops"] for k, v in op.items()}
  if kind == "det":
    gen = ocr_versions.of_det(name)
    assert gen is ocr_versions.VERSIONS["PP-OCRv6"]
    assert ops["DetResizeForTest"] == {
        "limit_side_len": gen.params["text_det_limit_side_len"],
        "limit_type": gen.params["text_det_limit_type"],
        "max_side_limit": gen.params["text_det_max_side_limit"]}
    post = cfg["PostProcess"]
    assert (post["thresh"], post["box_thresh"], post["unclip_ratio"], post["max_candidates"]) == (
        gen.params["text_det_thresh"], gen.params["text_det_box_thresh"],
        gen.params["text_det_unclip_ratio"], gen.max_candidates)
    det = text_detection.load_detector(name, d)
    assert det.source == f"exported:{d}"
    img = np.random.default_rng(0).integers(0, 255, (70, 100, 3), np.uint8)
    assert det.prob_map(img).shape == (64, 96)
    return
  if name in doc_orientation.MODELS:
    hw, labels = (cls_preprocess.DOC_CROP,) * 2, doc_orientation.LABELS
    assert ops["ResizeImage"] == {"resize_short": cls_preprocess.DOC_SHORT}
    model = doc_orientation.load_doc_orientation(name, d)
    probs = model.probs([np.full((300, 400, 3), 200, np.uint8)])
  else:
    spec = orientation.SPECS[name]
    hw, labels = spec.input_hw, spec.labels
    assert ops["ResizeImage"] == {"size": [hw[1], hw[0]]}
    model = orientation.load_orientation(name, d)
    probs = model.probs([np.full((30, 90, 3), 200, np.uint8)] * 3)
  assert cfg["Global"]["input"]["shape"] == [-1, 3, *hw]
  assert cfg["PostProcess"]["Topk"]["label_list"] == list(labels)
  assert model.source == f"exported:{d}" and probs.shape[1] == len(labels)
  np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
  with pytest.raises(errors.InputError, match=f"takes inputs \\[B, {hw[0]}, {hw[1]}, 3\\]"):
    forward.load_forward(name, "cls", d)[0](np.zeros((1, 32, 32, 3), np.float32))


def test_ocr_pipeline_runs_on_onnx_without_jax(official_export, aux_dir, ocr_images_dir,
                                               tmp_path):
  """The detector and classifiers exported beside the recognizer: the whole OCR pipeline
  (PP-OCRv4, with the page orientation model) in a process where JAX, Flax and TensorFlow
  cannot be imported gives the JAX pipeline's lines."""
  import textrec  # pylint: disable=g-import-not-at-top

  out, _, _, _ = official_export
  dirs = {key: aux_dir(kind, name)[0] for key, kind, name in (
      ("det", "det", "PP-OCRv4_mobile_det"), ("cls", "cls", "ch_ppocr_mobile_v2.0_cls"),
      ("doc", "cls", "PP-LCNet_x1_0_doc_ori"))}
  image = str(ocr_images_dir / "ger_2.jpg")
  want = next(textrec.create_pipeline("OCR", ocr_version="PP-OCRv4").predict(image))
  code = (
      "import sys, json\n"
      "for m in ('jax', 'flax', 'tensorflow'): sys.modules[m] = None\n"
      "import textrec\n"
      f"p = textrec.create_pipeline('OCR', ocr_version='PP-OCRv4', rec_model_dir={out!r}, "
      f"det_model_dir={dirs['det']!r}, cls_model_dir={dirs['cls']!r}, "
      f"doc_orientation_model_dir={dirs['doc']!r})\n"
      f"r = next(p.predict({image!r}))\n"
      "print(json.dumps([r.rec_texts, r.json['res']['rec_polys'], p.detector.source, "
      "p.doc_orientation.source]))\n")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  import json  # pylint: disable=g-import-not-at-top

  texts, polys, source, doc_source = json.loads(r.stdout.strip().splitlines()[-1])
  assert source.startswith("exported:") and doc_source.startswith("exported:")
  assert texts == want.rec_texts and len(texts) >= 2
  assert polys == want.json["res"]["rec_polys"]


def test_conversion_keeps_info_lines_quiet_when_the_root_level_was_lowered(caplog):
  """jax2onnx logs INFO on the root logger; importing paddle lowers the root level to INFO."""
  import logging  # pylint: disable=g-import-not-at-top

  from textrec.export import converters  # pylint: disable=g-import-not-at-top

  root = logging.getLogger()
  saved = root.level
  root.setLevel(logging.INFO)
  try:
    with caplog.at_level(logging.INFO):
      with converters.quiet_serde():
        logging.info("converter chatter")
        logging.warning("a real warning")
      assert root.level == logging.INFO  # restored
      logging.info("after the conversion")
  finally:
    root.setLevel(saved)
  messages = [r.getMessage() for r in caplog.records]
  assert "converter chatter" not in messages
  assert "a real warning" in messages and "after the conversion" in messages
