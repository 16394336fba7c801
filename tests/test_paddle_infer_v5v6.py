"""PP-OCRv5 and PP-OCRv6 Paddle inference directories (textrec/weights/paddle_infer.py) against
what Paddle itself computed on them, and the v5 language variants' names.

The directories are PaddleOCR's exporter run on the paddle_ref weights
(../shared/fixtures/paddle_infer, README "PP-OCRv5 and PP-OCRv6"). `PP-OCRv5_mobile_rec`,
`PP-OCRv6_small_rec` and `PP-OCRv6_tiny_rec` ship their `inference.pdiparams` (deploy form);
`PP-OCRv5_server_rec` and `PP-OCRv6_medium_rec` only the program and a per-tensor index of the
genuine file. Server's replayed weights must rebuild that file byte for byte. Medium's are
re-parameterised (PPLCNetV4 fused) by our `zoo.to_deploy`, whose fused values round unlike
Paddle's: every tensor the fusion does not touch must be byte-identical to the genuine one,
the fused ones are judged by the outputs. Paddle's own runs of these directories equal the
paddle_ref outputs (bitwise with `paddle.jit.load`, README "Check"), so those outputs are the
reference: probs atol 1e-5 rtol 1e-3, features 1e-3 (2e-3 for v5 server, whose own float32
error reaches 7.3e-4; paddle_ref README). The tests skip without ../shared, naming it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import parity
from fixture_files import shared_root
from paddle_ref import load_io, manifest, replay
from textrec.errors import UsageError, WeightsError
from textrec.models import recognizer, registry, zoo
from textrec.weights import loader, paddle_infer, paddle_program, pdiparams
from textrec.weights import paddle as pw

V4_MOBILE, V4_SERVER = "PP-OCRv4_mobile_rec", "PP-OCRv4_server_rec"
MOBILE, SERVER = "PP-OCRv5_mobile_rec", "PP-OCRv5_server_rec"
SMALL, TINY, MEDIUM = "PP-OCRv6_small_rec", "PP-OCRv6_tiny_rec", "PP-OCRv6_medium_rec"
NOT_IN_PROGRAM = ("head.gtc_head.", "head.before_gtc.", "backbone.last_conv.", "backbone.fc.")
REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Dir:
  num_classes: int   # CTC head: blank + the yml's characters + space
  tensors: int       # in the program
  fused: bool        # the exporter re-parameterised the backbone (deploy form)
  shipped: bool      # inference.pdiparams is in ../shared
  feat_tol: float
  dict_name: str     # the PaddleOCR dictionary of that head, as errors name it


DIRS = {MOBILE: Dir(18385, 234, True, True, 1e-3, "ppocrv5_dict"),
        SERVER: Dir(18385, 458, False, False, 2e-3, "ppocrv5_dict"),
        SMALL: Dir(18710, 151, True, True, 1e-3, "ppocrv6_dict"),
        TINY: Dir(6906, 90, True, True, 1e-3, "ppocrv6_tiny_dict"),
        MEDIUM: Dir(18710, 161, True, False, 1e-3, "ppocrv6_dict")}


def _shared(what: str, pattern: str) -> pathlib.Path:
  d = shared_root() / "fixtures" / what
  if not all((d / pattern.format(m)).exists() for m in DIRS):
    pytest.skip(f"needs the PP-OCRv5/v6 fixtures at {d} (../shared, optional, not shipped)")
  return d


@pytest.fixture(scope="module")
def infer_dir() -> pathlib.Path:
  """../shared/fixtures/paddle_infer (PaddleOCR's exported directories)."""
  return _shared("paddle_infer", "{}")


@pytest.fixture(scope="module")
def ref_dir() -> pathlib.Path:
  """../shared/fixtures/paddle_ref: manifests, float32 outputs on 3 rows."""
  return _shared("paddle_ref", "io_{}.npz")


def _write_rebuilt(src: pathlib.Path, out: pathlib.Path, tensors: dict) -> str:
  """`tensors` as `inference.pdiparams` beside copies of src's program and yml -> sha256."""
  out.mkdir()
  for f in ("inference.json", "inference.yml"):
    shutil.copy(src / f, out)
  return pdiparams.write(out / "inference.pdiparams", tensors)


def _rebuild(name: str, src: pathlib.Path, ref_dir: pathlib.Path, out: pathlib.Path
             ) -> pathlib.Path:
  """The directory made whole from the replayed weights laid out as its program names them
  (module doc): server byte for byte, medium's unfused tensors byte for byte."""
  state, _ = replay(ref_dir, name, stop_after="head.ctc_head.fc.bias")
  state = {k: v for k, v in state.items() if not k.startswith(NOT_IN_PROGRAM)}
  variables = pw.paddle_to_flax(state, model_name=name, num_classes=DIRS[name].num_classes)
  program = paddle_program.read(src / "inference.json")
  assert not program.unused
  fused = zoo.to_deploy(name, variables)  # PPHGNetV2 has nothing to fuse: the same
  mapping, _, num_classes, _, _ = paddle_infer.map_program(program, name)
  assert num_classes == DIRS[name].num_classes
  tensors = paddle_infer.to_program_tensors(fused, mapping)
  assert set(tensors) == set(program.params) and len(tensors) == DIRS[name].tensors
  index = json.loads((src / "pdiparams_index.json").read_text())
  sha = _write_rebuilt(src, out, tensors)
  # pdiparams_index lists the tensors in file order, which is their names sorted.
  differ = [n for t, n in zip(index["tensors"], sorted(tensors))
            if hashlib.sha256(tensors[n].tobytes()).hexdigest() != t["sha256"]]
  if not DIRS[name].fused:
    assert not differ, differ[:3]
    assert sha == index["file_sha256"]
    return out
  untouched = {n for n, key in mapping.items() if _same_leaf(variables, fused, key)}
  n_fused = sum(e["source"] != "same_as_train_form"
                for e in manifest(ref_dir, name)["deploy_params"])
  assert len(tensors) - len(untouched) == n_fused, (len(untouched), n_fused)
  assert not set(differ) & untouched, sorted(set(differ) & untouched)[:3]
  print(f"{name}: {len(tensors) - len(differ)} of {len(tensors)} tensors byte-identical "
        f"({len(untouched)} untouched by the fusion)")
  return out


def _same_leaf(train_form: dict, fused: dict, key: tuple) -> bool:
  """Key of the fused variables that the training form holds with the same value."""
  a, b = train_form, fused
  for k in key:
    if k not in a:
      return False
    a, b = a[k], b[k]
  return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="module")
def model_dir(infer_dir, ref_dir, tmp_path_factory):
  """name -> a whole inference directory (shipped, else rebuilt once)."""
  made: dict[str, pathlib.Path] = {}

  def get(name: str) -> pathlib.Path:
    if DIRS[name].shipped:
      return infer_dir / name
    if name not in made:
      made[name] = _rebuild(name, infer_dir / name, ref_dir,
                            tmp_path_factory.mktemp("rebuilt") / name)
    return made[name]

  return get


def _check_charset(name: str, d: paddle_infer.InferenceDir) -> None:
  """inference.yml's character_dict (blank and space are not in it) + the space."""
  n = DIRS[name].num_classes
  assert d.num_classes == n
  assert len(d.charset.chars) == n - 1 and d.charset.chars[-1] == " "
  assert d.charset.chars.count(" ") == 1


@pytest.mark.parametrize("name", list(DIRS))
def test_dir_matches_paddle(model_dir, ref_dir, name):
  spec = DIRS[name]
  d = paddle_infer.load(model_dir(name), name)
  assert (d.deploy or not spec.fused) and len(d.mapping) == spec.tensors
  assert d.model_name == name and not d.notes
  _check_charset(name, d)
  io = load_io(ref_dir, name)
  model, _ = paddle_infer.build_model(name, d.num_classes, d.deploy)
  ours = parity.forward(model, d.variables, io["x"].transpose(0, 2, 3, 1))
  form = "_deploy_form" if spec.fused else ""
  ref_b = io[f"backbone_feat{form}"]
  db = parity.maxdiff(ours["backbone"], ref_b)
  # Paddle stores the neck of the training form only; the fused form computes the same.
  dn = parity.maxdiff(ours["neck"], io["ctc_neck_feat"])
  msg = f"{name}: max|d| backbone {db:.2e} neck {dn:.2e}"
  assert db < spec.feat_tol, db
  assert dn < spec.feat_tol, dn
  if name == TINY:
    dg = parity.maxdiff(ours["guide"], io[f"ctc_guide_feat{form}"])
    msg += f" guide {dg:.2e}"
    assert dg < spec.feat_tol, dg
  ref_p = io["probs_deploy_form" if spec.fused else "probs_train_form"]
  assert ref_p.dtype == np.float32 and len(ref_p) == 3
  dp = parity.check_probs(name, ours["probs"], ref_p, spec.num_classes)
  print(f"{msg} probs {dp:.2e}")


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


@pytest.mark.parametrize("folder,asked", [
    (MOBILE, V4_MOBILE), (SERVER, V4_SERVER), (SERVER, MOBILE), (MOBILE, SMALL),
    (SMALL, MOBILE), (TINY, V4_MOBILE), (MEDIUM, SERVER), (SMALL, TINY), (TINY, MEDIUM),
    (MEDIUM, SMALL)])
def test_dir_asked_as_another_model(infer_dir, folder, asked):
  """inference.yml's Global.model_name decides before anything is mapped: one line naming
  the directory's model and the one asked for."""
  with pytest.raises(WeightsError) as e:
    loader.load_weights(asked, infer_dir / folder)
  msg = _one_line(e)
  assert f"Global.model_name is {folder!r} but {asked!r} was requested" in msg
  assert str(infer_dir / folder / "inference.yml") in msg


@pytest.mark.parametrize("folder,config", [(SMALL, "v5_mobile"), (MOBILE, "v6_tiny")])
def test_cli_names_the_directory_model(infer_dir, tmp_path, folder, config):
  """The same from `python -m textrec.main`: exit code 2, one `error:` line."""
  img = tmp_path / "word.png"
  img.write_bytes(bytes.fromhex(  # a 1x1 PNG: the directory fails before it is read
      "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
      "3a7e9b550000000a49444154789c63600000000200015d0f1a3a0000000049454e44ae426082"))
  env = {k: v for k, v in os.environ.items() if k != "TEXTREC_DEBUG"}
  env.update(JAX_PLATFORMS="cpu", TEXTREC_HUGEPAGES="0", PYTHONPATH=str(REPO))
  r = subprocess.run([sys.executable, "-m", "textrec.main", f"--config=configs/{config}.py",
                      "--config.mode=predict", f"--config.predict.input={img}",
                      f"--config.predict.model_dir={infer_dir / folder}"],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2, r.stderr[-2000:]
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
  assert f"Global.model_name is {folder!r}" in lines[0] and f"load it as {folder!r}" in lines[0]


@pytest.mark.parametrize("folder,asked,backbone,hint", [
    (SMALL, MOBILE, "PPLCNetV4", SMALL), (TINY, SMALL, "PPLCNetV4", TINY),
    (MOBILE, TINY, "PPLCNetV3", f"{V4_MOBILE}, {MOBILE}")])
def test_programs_without_yml_name_their_model(infer_dir, tmp_path, folder, asked, backbone,
                                               hint):
  """No inference.yml (an older export): the program's first layers tell the models apart,
  in one line naming the backbone and the model it is (a PPLCNetV4 size by its stem)."""
  d = _copy(infer_dir / folder, tmp_path / "model", yml=False)
  with pytest.raises(paddle_infer.MismatchError) as e:
    loader.load_weights(asked, d)
  assert (f"not a {asked} program: its first layers are {backbone}'s (as in {hint})"
          in _one_line(e))


def test_server_programs_without_yml_name_their_backbone(model_dir, tmp_path):
  """PPHGNet (v4) and PPHGNetV2 (v5); medium by its stem width without its weights."""
  d = _copy(model_dir(SERVER), tmp_path / "v5_server", yml=False)
  with pytest.raises(paddle_infer.MismatchError) as e:
    loader.load_weights(V4_SERVER, d)
  assert (f"not a {V4_SERVER} program: its first layers are PPHGNetV2's (as in {SERVER})"
          in _one_line(e))
  program = paddle_program.read(model_dir(MEDIUM) / "inference.json")
  with pytest.raises(paddle_infer.MismatchError) as e:
    paddle_infer.map_program(program, SERVER)
  assert (f"not a {SERVER} program: its first layers are PPLCNetV4's (as in {MEDIUM})"
          in _one_line(e))


@pytest.mark.parametrize("name", [MOBILE, SMALL, TINY])
def test_dictionary_that_does_not_fit_the_head(infer_dir, tmp_path, name):
  import yaml  # pylint: disable=g-import-not-at-top

  n = DIRS[name].num_classes
  d = _copy(infer_dir / name, tmp_path / "model")
  cfg = yaml.safe_load((d / "inference.yml").read_text(encoding="utf-8"))
  chars = cfg["PostProcess"]["character_dict"]
  assert len(chars) == n - 2
  cfg["PostProcess"]["character_dict"] = chars[:6623]  # a v4 dictionary's size
  (d / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
  with pytest.raises(WeightsError) as e:
    loader.load_weights(name, d)
  assert f"6623 characters but the model's CTC head has {n} classes" in _one_line(e)
  (d / "inference.yml").unlink()  # PaddleOCR 2.x form: dict_path (default ppocr_keys_v1)
  with pytest.raises(WeightsError) as e:
    loader.load_weights(name, d)
  msg = _one_line(e)
  assert f"CTC head has {n} classes but PaddleOCR's ppocr_keys_v1" in msg
  assert DIRS[name].dict_name + ".txt" in msg  # the dictionary these heads use
  own = tmp_path / f"{DIRS[name].dict_name}.txt"
  own.write_text("\n".join(chars) + "\n", encoding="utf-8")
  w = loader.load_weights(name, d, dict_path=str(own))
  assert w.charset.chars == tuple(chars) + (" ",)


# ----------------------------------------------------------------------------- v5 languages

LANGUAGE_MODELS = [f"{lang}_{MOBILE}" for lang in registry.V5_MOBILE_LANGUAGES]


def test_language_variants_are_v5_mobile_with_their_head():
  """PaddleX's 11 `<language>_PP-OCRv5_mobile_rec`: registered recognizers, each
  PP-OCRv5_mobile_rec's variables with the head its dictionary sizes (here 838 classes); no
  default head, and no official weights to fall back on."""
  import textrec  # pylint: disable=g-import-not-at-top

  assert len(LANGUAGE_MODELS) == 11 and set(LANGUAGE_MODELS) <= set(registry.model_names())
  flat = lambda m: {jax.tree_util.keystr(k): v.shape  # noqa: E731
                    for k, v in jax.tree_util.tree_flatten_with_path(
                        recognizer.variable_shapes(m))[0]}
  want = flat(registry.get_model(MOBILE)(num_classes=838))
  assert want["['params']['head']['ctc_head']['fc']['bias']"] == (838,)
  assert flat(registry.get_model(LANGUAGE_MODELS[0])(num_classes=838)) == want
  for name in LANGUAGE_MODELS:
    ctor = registry.get_model(name)
    assert ctor is recognizer.pp_ocrv5_mobile_language_rec, name
    assert ctor(num_classes=838) == registry.get_model(MOBILE)(num_classes=838), name
    with pytest.raises(TypeError):
      ctor()
    with pytest.raises(UsageError) as e:
      textrec.create_model(name)
    msg = _one_line(e)
    assert msg.startswith(f"{name} has no weights shipped with textrec")
    assert f"official_models/{name}" in msg


def test_v5_mobile_weights_load_as_a_language_variant(infer_dir, tmp_path):
  """A v5 mobile directory whose inference.yml names latin_PP-OCRv5_mobile_rec (PaddleX's
  form of a language model; the dictionary fits the head) loads as that name, tensor for
  tensor as PP-OCRv5_mobile_rec; asked as another language it is one line naming latin."""
  import yaml  # pylint: disable=g-import-not-at-top

  latin = f"latin_{MOBILE}"
  d = _copy(infer_dir / MOBILE, tmp_path / latin)
  cfg = yaml.safe_load((d / "inference.yml").read_text(encoding="utf-8"))
  cfg["Global"]["model_name"] = latin
  (d / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
  got = paddle_infer.load(d, latin)
  ref = paddle_infer.load(infer_dir / MOBILE, MOBILE)
  assert got.deploy and got.num_classes == 18385 and got.mapping == ref.mapping
  assert jax.tree_util.tree_all(jax.tree.map(np.array_equal, got.variables, ref.variables))
  with pytest.raises(WeightsError) as e:
    loader.load_weights(f"korean_{MOBILE}", d)
  assert f"Global.model_name is {latin!r} but 'korean_{MOBILE}' was requested" in _one_line(e)
