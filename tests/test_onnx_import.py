"""Official ONNX -> PaddleOCR-named deploy state dict (textrec/weights/onnx_import.py)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from textrec import charset as charset_lib
from textrec.weights import official, onnx_import

MODEL = "PP-OCRv4_mobile_rec"


@pytest.fixture(scope="module")
def imported():
  return onnx_import.import_onnx(official.official_onnx_path(MODEL))


def test_names_shapes_and_order_match_paddle_deploy_state_dict(imported, paddle_ref_dir):
  state, _ = imported
  manifest = json.loads((paddle_ref_dir / f"manifest_{MODEL}.json").read_text())
  want = [(e["name"], tuple(e["shape"])) for e in manifest["deploy_params"]
          if not e["name"].startswith(onnx_import.TRAINING_ONLY_PREFIXES)]
  assert len(want) == 234
  assert [(k, v.shape) for k, v in state.items()] == want
  onnx_import.check_shapes(state, {e["name"]: e["shape"] for e in manifest["deploy_params"]})
  assert all(v.dtype == np.float32 and v.flags.writeable for v in state.values())


def test_values_are_plausible_trained_weights(imported):
  state, _ = imported
  for k, v in state.items():
    assert np.isfinite(v).all(), k
    assert np.abs(v).max() > 0, f"{k} is all zeros"
  for k in (k for k in state if k.endswith("._variance")):
    assert (state[k] > 0).all(), k
  # Distinct tensors: a mapping that reused one constant for two names would show here.
  digests = {v.tobytes() for k, v in state.items() if v.size > 1}
  assert len(digests) == sum(v.size > 1 for v in state.values())


def test_charset_is_ppocr_keys_plus_space(imported, ppocr_keys):
  _, cs = imported
  assert cs.num_classes == 6625
  ref = charset_lib.load_dict(ppocr_keys, use_space_char=True)
  assert cs.chars == ref.chars
  assert cs.chars[-1] == " " and len(cs.chars) == 6624


def test_missing_file_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.onnx"):
    onnx_import.import_onnx(tmp_path / "nope.onnx")


def test_garbage_file_is_rejected(tmp_path):
  p = tmp_path / "bad.onnx"
  p.write_bytes(b"\x00not an onnx model" * 10)
  with pytest.raises((onnx_import.OnnxImportError, FileNotFoundError)):
    onnx_import.import_onnx(p)


def test_graph_without_metadata_is_rejected(tmp_path):
  m = onnx.load(official.official_onnx_path(MODEL))
  del m.metadata_props[:]
  p = tmp_path / "nometa.onnx"
  onnx.save(m, p)
  with pytest.raises(onnx_import.OnnxImportError, match="character"):
    onnx_import.import_onnx(p)


def test_truncated_graph_is_rejected(tmp_path):
  """The official graph cut before the neck's first MatMul: the walk must say what is missing."""
  m = onnx.load(official.official_onnx_path(MODEL))
  first_matmul = next(i for i, n in enumerate(m.graph.node) if n.op_type == "MatMul")
  del m.graph.node[first_matmul:]
  m.graph.output[0].name = m.graph.node[-1].output[0]
  p = tmp_path / "truncated.onnx"
  onnx.save(m, p)
  with pytest.raises(onnx_import.OnnxImportError, match="truncated.onnx: found no SVTR block"):
    onnx_import.import_onnx(p)
