"""PP-OCRv4 mobile det and ch_ppocr_mobile_v2.0_cls (textrec/models/detector.py,
classifier.py) with the official weights imported from ONNX (textrec/weights/onnx_import.py),
against the official ONNX files in onnxruntime on the same inputs."""
from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import official_onnx
import rendered_words
from textrec.inference import preprocess
from textrec.models import registry
from textrec.models import layers
from textrec.runtime import settings
from textrec.weights import official, onnx_import

DET = "PP-OCRv4_mobile_det"
CLS = "ch_ppocr_mobile_v2.0_cls"
DET_TOL = 1e-4
CLS_TOL = 1e-5
# PaddleOCR's det NormalizeImage (on the BGR image as read, scale 1/255).
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)
DET_IMAGE = "img_10.jpg"
CLS_BATCH = 4


def _session(name: str):
  return official_onnx.session(official.official_onnx_path(name))


def _flax(name: str, kind: str):
  """Jitted x [B, H, W, 3] -> output of the deploy model with the imported official weights.
  (One jit compile per shape is several times cheaper here than eager op-by-op apply.)"""
  variables = official.import_official_aux(name)
  model = registry.get_model(name, kind=kind)(deploy=True)
  with settings.conv_impl("xla"):  # plain convs: the smallest programs to compile
    fn = jax.jit(lambda x: model.apply(variables, x, train=False))
    return lambda x: fn(jnp.asarray(x))


@pytest.fixture(scope="module")
def det():
  """(ours, onnxruntime): x [B, H, W, 3] -> shrink map [B, H, W, 1]."""
  ours = _flax(DET, "det")
  ref = _session(DET)
  with settings.conv_impl("xla"):
    yield (lambda x: np.asarray(ours(x)["maps"]), lambda x: ref(x).transpose(0, 2, 3, 1))


@pytest.fixture(scope="module")
def cls():
  """(ours, onnxruntime): x [B, 48, 192, 3] -> probabilities [B, 2]."""
  ours = _flax(CLS, "cls")
  with settings.conv_impl("xla"):
    yield (lambda x: np.asarray(ours(x)), _session(CLS))


def _det_input(img: np.ndarray, h: int, w: int) -> np.ndarray:
  x = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
  return ((x - DET_MEAN) / DET_STD)[None]


def _compare(pair, x: np.ndarray, tol: float, what: str) -> tuple[np.ndarray, np.ndarray]:
  ours_fn, ref_fn = pair
  ours, ref = ours_fn(x), ref_fn(x)
  assert ours.shape == ref.shape, (ours.shape, ref.shape)
  err = float(np.abs(ours - ref).max())
  print(f"\n{what}: max |d| {err:.2e}")
  assert err <= tol, f"{what}: max |d| {err:.2e} > {tol:.0e}"
  return ours, ref


def test_det_random_input_matches_onnxruntime(det):
  x = np.random.default_rng(0).normal(0.0, 1.0, (1, 320, 320, 3)).astype(np.float32)
  ours, _ = _compare(det, x, DET_TOL, "det random [1, 320, 320, 3]")
  assert ours.shape == (1, 320, 320, 1)


@pytest.mark.parametrize("h,w", [(320, 320), (256, 416)])
def test_det_real_image_matches_onnxruntime(det, ocr_images_dir, h, w):
  path = ocr_images_dir / DET_IMAGE
  img = cv2.imread(str(path))
  assert img is not None, path
  ours, ref = _compare(det, _det_input(img, h, w), DET_TOL, f"det {DET_IMAGE} {h}x{w}")
  assert ref.max() > 0.9, "the reference finds no text: not a meaningful input"
  # The text masks DB post-processing would binarise (threshold 0.3) agree.
  assert ((ours > 0.3) == (ref > 0.3)).mean() > 0.999


def test_cls_random_inputs_match_onnxruntime(cls):
  x = np.random.default_rng(1).uniform(-1, 1, (CLS_BATCH, 48, 192, 3)).astype(np.float32)
  ours, ref = _compare(cls, x, CLS_TOL, f"cls random [{CLS_BATCH}, 48, 192, 3]")
  np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-5)


def test_cls_ic15_crops_match_onnxruntime(cls, ic15_dir):
  rels = [line.split("\t", 1)[0] for line in
          (ic15_dir / "val.txt").read_text(encoding="utf-8").splitlines()[:CLS_BATCH - 1]]
  imgs = [cv2.imread(str(ic15_dir / r)) for r in rels]
  assert all(i is not None for i in imgs), rels
  _check_cls(cls, imgs, "ic15 crops")


def test_cls_rendered_words_match_onnxruntime(cls):
  """The same on words drawn at test time: runs without the IC15 dataset."""
  _check_cls(cls, [im for im, _ in rendered_words.images(CLS_BATCH - 1)], "rendered words")


def _check_cls(cls, imgs, what: str) -> None:
  imgs = imgs + [cv2.rotate(imgs[0], cv2.ROTATE_180)]  # one upside-down crop
  x = np.stack([preprocess.resize_norm(i, 192) for i in imgs])  # cls_image_shape [3, 48, 192]
  ours, ref = _compare(cls, x, CLS_TOL, f"cls {what} [{CLS_BATCH}, 48, 192, 3]")
  assert (ours.argmax(-1) == ref.argmax(-1)).all()


def test_importers_reject_the_other_graph():
  with pytest.raises(onnx_import.OnnxImportError, match="output"):
    onnx_import.import_det_onnx(official.official_onnx_path(CLS))
  with pytest.raises(onnx_import.OnnxImportError, match="output"):
    onnx_import.import_cls_onnx(official.official_onnx_path(DET))


def test_registry_keeps_detectors_apart_from_recognizers():
  assert DET in registry.model_names("det") and CLS in registry.model_names("cls")
  assert DET not in registry.model_names() and CLS not in registry.model_names()
  with pytest.raises(KeyError, match="kind='det'"):
    registry.get_model(DET)
  with pytest.raises(KeyError, match="use import_official_aux"):
    official.load_official(DET)
