"""PP-OCRv5 Paddle inference directories (textrec/weights/paddle_infer.py) against what Paddle
itself computed on them.

The directories are PaddleOCR's exporter run on the paddle_ref weights
(../shared/fixtures/paddle_infer, README "PP-OCRv5 and PP-OCRv6"): `PP-OCRv5_mobile_rec` ships
its `inference.pdiparams` (deploy form), `PP-OCRv5_server_rec` (PPHGNetV2_B4) only the
program and a per-tensor index of the genuine file, which the replayed weights must rebuild
byte for byte. Paddle's own runs of these directories equal the paddle_ref outputs (bitwise
with `paddle.jit.load`, README "Check"), so those outputs are the reference here: probs atol
1e-5 rtol 1e-3, features 1e-3 (mobile) / 2e-3 (server, whose own float32 error reaches 7.3e-4;
paddle_ref README). A copy in tests/fixtures/paddle_infer is used when there is one, else the
tests skip without ../shared, naming it.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import shutil

import jax
import numpy as np
import pytest

from fixture_files import FIXTURES, shared_root
from paddle_ref import load_io, replay
from textrec.errors import WeightsError
from textrec.runtime import settings
from textrec.weights import loader, paddle_infer, paddle_program, pdiparams
from textrec.weights import paddle as pw

MOBILE, SERVER = "PP-OCRv5_mobile_rec", "PP-OCRv5_server_rec"
V4_MOBILE, V4_SERVER = "PP-OCRv4_mobile_rec", "PP-OCRv4_server_rec"
NUM_CLASSES = 18385
NOT_IN_PROGRAM = ("head.gtc_head.", "head.before_gtc.", "backbone.last_conv.", "backbone.fc.")


@pytest.fixture(scope="module")
def v5_dirs(request) -> pathlib.Path:
  """The folder holding PP-OCRv5_{mobile,server}_rec: the repository's rebuilt copy, else
  ../shared/fixtures/paddle_infer."""
  if all((FIXTURES / "paddle_infer" / m).is_dir() for m in (MOBILE, SERVER)):
    return request.getfixturevalue("paddle_infer_dir")
  d = shared_root() / "fixtures" / "paddle_infer"
  if not all((d / m).is_dir() for m in (MOBILE, SERVER)):
    pytest.skip(f"needs PaddleOCR's exported PP-OCRv5 inference directories at {d} "
                "(optional, not shipped)")
  return d


@pytest.fixture(scope="module")
def ref_dir() -> pathlib.Path:
  """paddle_ref with float32 probabilities on 3 rows where ../shared has it, else the
  repository's (float16, 2 rows)."""
  d = shared_root() / "fixtures" / "paddle_ref"
  return d if (d / f"io_{SERVER}.npz").is_file() else FIXTURES / "paddle_ref"


def _forward(name: str, d: paddle_infer.InferenceDir, x_nchw: np.ndarray) -> dict:
  model, _ = paddle_infer.build_model(name, d.num_classes, d.deploy)
  with settings.conv_impl("xla"):  # plain convs, one compile (as tests/test_paddle_infer.py)
    out = jax.jit(lambda v, x: model.apply(v, x, train=False, return_features=True))(
        d.variables, x_nchw.transpose(0, 2, 3, 1))
  return {"backbone": np.asarray(out["backbone_feat"]).transpose(0, 3, 1, 2),  # NCHW
          "neck": np.asarray(out["ctc_neck"]),
          "probs": np.asarray(jax.nn.softmax(out["ctc_logits"], axis=-1))}


def _compare(what: str, ours: dict, io: dict, suffix: str, feat_tol: float) -> None:
  ref = io[f"probs{suffix}"].astype(np.float32)
  n = len(ref)  # the repository's deploy-form probabilities are row 0 only
  assert ours["probs"].shape[1:] == ref.shape[1:] == (40, NUM_CLASSES)
  dp = float(np.abs(ours["probs"][:n] - ref).max())
  feat = io["backbone_feat" + ("_deploy_form" if suffix == "_deploy_form" else "")]
  db = float(np.abs(ours["backbone"] - feat).max())
  # Paddle stores the neck of the training form only; the fused form computes the same.
  dn = float(np.abs(ours["neck"] - io["ctc_neck_feat"]).max())
  print(f"{what}: max|d| probs {dp:.2e} backbone {db:.2e} neck {dn:.2e}")
  np.testing.assert_allclose(ours["probs"][:n], ref, atol=1e-5, rtol=1e-3, err_msg=what)
  assert db < feat_tol, db
  assert dn < feat_tol, dn
  # Our best class is Paddle's, up to ties after a float16 reference's rounding.
  picked = np.take_along_axis(ref, ours["probs"][:n].argmax(-1)[..., None], -1)[..., 0]
  np.testing.assert_allclose(picked, ref.max(-1), rtol=1e-3, atol=0, err_msg=what)


def _check_v5_charset(d: paddle_infer.InferenceDir) -> None:
  """inference.yml's character_dict (ppocrv5_dict, 18383 characters) + the space."""
  assert d.num_classes == NUM_CLASSES
  assert len(d.charset.chars) == NUM_CLASSES - 1 and d.charset.chars[-1] == " "
  assert d.charset.chars.count(" ") == 1


def test_mobile_dir_matches_paddle(v5_dirs, ref_dir):
  d = paddle_infer.load(v5_dirs / MOBILE, MOBILE)
  assert d.deploy  # PaddleOCR's exporter fuses PPLCNetV3
  assert len(d.mapping) == 234
  _check_v5_charset(d)
  io = load_io(ref_dir, MOBILE)
  _compare(MOBILE, _forward(MOBILE, d, io["x"]), io, "_deploy_form", 1e-3)


@pytest.fixture(scope="module")
def server_dir(v5_dirs, ref_dir, tmp_path_factory) -> pathlib.Path:
  """PP-OCRv5_server_rec made whole: the replayed weights, laid out as the program names them
  and written in Paddle's format, must be the genuine (unshipped) .pdiparams byte for byte."""
  src = v5_dirs / SERVER
  state, _ = replay(ref_dir, SERVER, stop_after="head.ctc_head.fc.bias")
  state = {k: v for k, v in state.items() if not k.startswith(NOT_IN_PROGRAM)}
  variables = pw.paddle_to_flax(state, model_name=SERVER, num_classes=NUM_CLASSES)
  program = paddle_program.read(src / "inference.json")
  assert program.backbone == "PPHGNetV2" and not program.unused
  mapping, _, num_classes, _, _ = paddle_infer.map_program(program, SERVER)
  assert num_classes == NUM_CLASSES
  tensors = paddle_infer.to_program_tensors(variables, mapping)
  assert set(tensors) == set(program.params) and len(tensors) == 458
  index = json.loads((src / "pdiparams_index.json").read_text())
  out = tmp_path_factory.mktemp("v5_server") / SERVER
  out.mkdir()
  sha = pdiparams.write(out / "inference.pdiparams", tensors)
  if sha != index["file_sha256"]:  # name the first tensor that differs
    for t, n in zip(index["tensors"], sorted(tensors)):
      assert hashlib.sha256(tensors[n].tobytes()).hexdigest() == t["sha256"], n
  assert sha == index["file_sha256"]
  for f in ("inference.json", "inference.yml"):
    shutil.copy(src / f, out)
  return out


def test_server_dir_matches_paddle(server_dir, ref_dir):
  d = paddle_infer.load(server_dir, SERVER)
  assert len(d.mapping) == 458
  _check_v5_charset(d)
  io = load_io(ref_dir, SERVER)
  _compare(SERVER, _forward(SERVER, d, io["x"]), io, "_train_form", 2e-3)


# ----------------------------------------------------------------------------- wrong model


def _copy(src: pathlib.Path, dst: pathlib.Path, yml: bool = True) -> pathlib.Path:
  dst.mkdir()
  for f in ("inference.json", "inference.pdiparams") + (("inference.yml",) if yml else ()):
    if (src / f).exists():
      shutil.copy(src / f, dst)
  return dst


def _one_line(e: pytest.ExceptionInfo) -> str:
  msg = str(e.value)
  assert "\n" not in msg, msg
  return msg


@pytest.mark.parametrize("folder,asked", [(MOBILE, V4_MOBILE), (SERVER, V4_SERVER),
                                          (SERVER, MOBILE)])
def test_v5_dir_asked_as_another_model(v5_dirs, folder, asked):
  """inference.yml's Global.model_name decides before anything is mapped: one line naming
  the directory's model and the one asked for."""
  with pytest.raises(WeightsError) as e:
    loader.load_weights(asked, v5_dirs / folder)
  msg = _one_line(e)
  assert f"Global.model_name is {folder!r} but {asked!r} was requested" in msg
  assert str(v5_dirs / folder / "inference.yml") in msg


@pytest.mark.parametrize("folder,asked", [(V4_MOBILE, MOBILE), (V4_SERVER, SERVER)])
def test_v4_dir_asked_as_v5(paddle_infer_dir, folder, asked):
  with pytest.raises(WeightsError) as e:
    loader.load_weights(asked, paddle_infer_dir / folder)
  assert f"Global.model_name is {folder!r} but {asked!r} was requested" in _one_line(e)


def test_programs_without_yml_name_their_backbone(v5_dirs, server_dir, paddle_infer_dir,
                                                  tmp_path):
  """No inference.yml (an older export): the program's first layers tell the models apart,
  in one line naming the backbone and the model it is (PPHGNet v4, PPHGNetV2 v5)."""
  d = _copy(server_dir, tmp_path / "v5_server", yml=False)
  with pytest.raises(paddle_infer.MismatchError) as e:
    loader.load_weights(V4_SERVER, d)
  assert (f"not a {V4_SERVER} program: its first layers are PPHGNetV2's (as in {SERVER})"
          in _one_line(e))
  d = _copy(paddle_infer_dir / V4_SERVER, tmp_path / "v4_server", yml=False)
  program = paddle_program.read(d / "inference.json")
  with pytest.raises(paddle_infer.MismatchError) as e:
    paddle_infer.map_program(program, SERVER)
  assert (f"not a {SERVER} program: its first layers are PPHGNet's (as in {V4_SERVER})"
          in _one_line(e))


def test_dictionary_that_does_not_fit_the_head(v5_dirs, tmp_path):
  import yaml  # pylint: disable=g-import-not-at-top

  d = _copy(v5_dirs / MOBILE, tmp_path / "model")
  cfg = yaml.safe_load((d / "inference.yml").read_text(encoding="utf-8"))
  chars = cfg["PostProcess"]["character_dict"]
  assert len(chars) == NUM_CLASSES - 2
  cfg["PostProcess"]["character_dict"] = chars[:6623]  # a v4 dictionary's size
  (d / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
  with pytest.raises(WeightsError) as e:
    loader.load_weights(MOBILE, d)
  assert "6623 characters but the model's CTC head has 18385 classes" in _one_line(e)
  (d / "inference.yml").unlink()  # PaddleOCR 2.x form: dict_path (default ppocr_keys_v1)
  with pytest.raises(WeightsError) as e:
    loader.load_weights(MOBILE, d)
  msg = _one_line(e)
  assert "CTC head has 18385 classes but PaddleOCR's ppocr_keys_v1" in msg
  assert "ppocrv5_dict" in msg  # the dictionary these heads use
  v5_dict = tmp_path / "ppocrv5_dict.txt"
  v5_dict.write_text("\n".join(chars) + "\n", encoding="utf-8")
  w = loader.load_weights(MOBILE, d, dict_path=str(v5_dict))
  assert w.charset.chars == tuple(chars) + (" ",)
