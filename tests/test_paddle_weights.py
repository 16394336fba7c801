"""textrec/weights/paddle.py: reading genuine `.pdparams` files without paddle, and the
Paddle-name <-> flax-variable mapping, checked against the fixture manifest."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from paddle_ref import manifest, replay
from textrec.models import recognizer
from textrec.models.registry import get_model
from textrec.weights import paddle as pw

MODEL = "PP-OCRv4_mobile_rec"
SUBSET = "PP-OCRv4_mobile_rec.train_form_subset.pdparams"
TINY = "PP-OCRv4_mobile_rec.tiny_numpy2.pdparams"


@pytest.fixture(scope="module")
def full(paddle_ref_dir):
  """The full replayed training-form state_dict (NRTR included) and the manifest."""
  state, _ = replay(paddle_ref_dir, MODEL)
  return state, manifest(paddle_ref_dir, MODEL)


@pytest.fixture(scope="module")
def template():
  model = get_model(MODEL)(num_classes=6625)
  return recognizer.variable_shapes(model, with_nrtr=True)


@pytest.mark.parametrize("fname,n", [(TINY, 62), (SUBSET, 701)])
def test_genuine_pdparams_load_and_match_replay(pdparams_dir, full, fname, n):
  state, _ = full
  loaded = pw.load_pdparams(pdparams_dir / fname)
  assert len(loaded) == n
  assert pw.STRUCTURED_KEY not in loaded
  for k, v in loaded.items():
    assert v.dtype == np.float32, k
    np.testing.assert_array_equal(v, state[k], err_msg=k)


def test_subset_reports_exactly_the_left_out_names(pdparams_dir, full, template):
  state, man = full
  loaded = pw.load_pdparams(pdparams_dir / SUBSET)
  with pytest.raises(ValueError, match="missing"):
    pw.paddle_to_flax(loaded, template)
  variables, report = pw.paddle_to_flax(loaded, template, strict=False)
  excluded = tuple(man["info"]["pdparams_excluded_prefixes"])
  want = {e["name"] for e in man["params"] if e["name"].startswith(excluded)}
  want.discard("head.gtc_head.positional_encoding.pe")  # a constant here, not a variable
  assert set(report.missing) == want
  assert report.unexpected == [] and report.mismatched == []
  assert pw.param_count(variables) == man["info"]["pdparams_n_params"]


def test_full_state_dict_maps_one_to_one(full, template):
  state, man = full
  assert len(state) == len(man["params"]) == 968
  variables, report = pw.paddle_to_flax(state, template, strict=False)
  assert report.ok, report.describe()
  assert report.ignored == ["head.gtc_head.positional_encoding.pe"]
  assert pw.param_count(variables) == man["n_params_total"] - 5000 * 384
  # Layout rules: conv OIHW -> HWIO, Linear and Embedding as they are, BN stats.
  p, s = variables["params"], variables["batch_stats"]
  np.testing.assert_array_equal(p["backbone"]["conv1"]["conv"]["kernel"],
                                state["backbone.conv1.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(p["head"]["ctc_head"]["fc"]["kernel"],
                                state["head.ctc_head.fc.weight"])
  np.testing.assert_array_equal(p["head"]["gtc_head"]["embedding"]["embedding"]["embedding"],
                                state["head.gtc_head.embedding.embedding.weight"])
  np.testing.assert_array_equal(s["backbone"]["conv1"]["bn"]["var"],
                                state["backbone.conv1.bn._variance"])
  # Inverse: every name and value comes back, in the reference order.
  back = pw.flax_to_paddle(variables, reference_names=[e["name"] for e in man["params"]])
  assert list(back) == [e["name"] for e in man["params"]]
  for k, v in state.items():
    if k != "head.gtc_head.positional_encoding.pe":
      np.testing.assert_array_equal(back[k], v, err_msg=k)
  assert back["head.gtc_head.positional_encoding.pe"].shape == (5000, 1, 384)
  # Without reference names the rule alone gives the same names.
  assert set(pw.flax_to_paddle(variables)) == set(state)


def test_mismatch_errors_name_the_problem(full, template):
  state, _ = full
  bad = dict(state)
  bad["backbone.conv1.conv.weight"] = np.zeros((8, 3, 3, 3), np.float32)
  bad["backbone.not_a_layer.weight"] = np.zeros((3,), np.float32)
  with pytest.raises(ValueError) as e:
    pw.paddle_to_flax(bad, template)
  msg = str(e.value)
  assert "backbone.conv1.conv.weight: (3, 3, 3, 8) -> (3, 3, 3, 16)" in msg
  assert "backbone.not_a_layer.weight" in msg


def test_save_load_roundtrip_and_bad_files(tmp_path, full):
  state, _ = full
  small = {k: state[k] for k in list(state)[:10]}
  path = tmp_path / "w.pdparams"
  pw.save_pdparams(small, path)
  back = pw.load_pdparams(path)
  assert list(back) == list(small)
  for k in small:
    np.testing.assert_array_equal(back[k], small[k])
  junk = tmp_path / "junk.pdparams"
  junk.write_bytes(b"not a pickle")
  with pytest.raises(ValueError, match="junk.pdparams"):
    pw.load_pdparams(junk)
  evil = tmp_path / "evil.pdparams"
  evil.write_bytes(pickle.dumps({"a": print}))
  with pytest.raises(ValueError, match="refusing"):
    pw.load_pdparams(evil)
  with pytest.raises(FileNotFoundError):
    pw.load_pdparams(tmp_path / "absent.pdparams")


def test_registry_template_path(pdparams_dir):
  """paddle_to_flax(model_name=...) builds the template itself (num_classes from the file)."""
  loaded = pw.load_pdparams(pdparams_dir / TINY)
  variables, report = pw.paddle_to_flax(loaded, strict=False, model_name=MODEL,
                                        num_classes=6625)
  assert report.unexpected == [] and report.mismatched == []
  assert "backbone.blocks3.0.pw_conv.lab.scale" in report.missing
  np.testing.assert_array_equal(
      variables["params"]["backbone"]["blocks2_0"]["dw_conv"]["conv_kxk_0"]["conv"]["kernel"],
      loaded["backbone.blocks2.0.dw_conv.conv_kxk.0.conv.weight"].transpose(2, 3, 1, 0))
