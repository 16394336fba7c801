"""PP-OCRv5 mobile det and PP-OCRv6 small / tiny det (textrec/models/detector.py) with the
official weights imported from ONNX (textrec/weights/onnx_import.py), against the official
ONNX files in onnxruntime on the same inputs; and the v6 deploy-form conversion."""
from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import official_onnx
from textrec.models import det_head, det_replk, detector, pplcnetv4, registry
from textrec.runtime import settings
from textrec.weights import official, onnx_import

MODELS = ("PP-OCRv5_mobile_det", "PP-OCRv6_small_det", "PP-OCRv6_tiny_det")
TOL = 1e-4
# One input size for every image: one compile per model.
H, W = 320, 480
REAL_IMAGES = ("img_01.jpg", "ger_1.jpg")
# PaddleOCR's det NormalizeImage (on the BGR image as read, scale 1/255).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _normalize(img: np.ndarray) -> np.ndarray:
  x = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
  return ((x - MEAN) / STD)[None]


def _synthetic() -> np.ndarray:
  """A 320x480 BGR page with three lines of text drawn now."""
  img = np.full((H, W, 3), 235, np.uint8)
  for i, (text, color) in enumerate([("Hello PaddleOCR 2025", (20, 20, 20)),
                                     ("textrec det v5 / v6", (120, 30, 30)),
                                     ("0123456789 JAX", (30, 90, 30))]):
    cv2.putText(img, text, (15, 80 + 95 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.3, color, 3)
  return img


@pytest.fixture(scope="module", params=MODELS)
def pair(request):
  """(name, ours, onnxruntime): x [1, H, W, 3] -> shrink map [1, H, W, 1]."""
  name = request.param
  variables = official.import_official_aux(name)
  model = registry.get_model(name, kind="det")(deploy=True)
  ref = official_onnx.session(official.official_onnx_path(name))
  with settings.conv_impl("xla"):  # plain convs: the smallest programs to compile
    fn = jax.jit(lambda x: model.apply(variables, x, train=False)["maps"])
    yield name, lambda x: np.asarray(fn(jnp.asarray(x))), lambda x: ref(x).transpose(0, 2, 3, 1)


def _compare(pair, x: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
  name, ours_fn, ref_fn = pair
  ours, ref = ours_fn(x), ref_fn(x)
  assert ours.shape == ref.shape == (1, H, W, 1), (ours.shape, ref.shape)
  err = float(np.abs(ours - ref).max())
  print(f"\n{name} {what}: max |d| {err:.2e}")
  assert err <= TOL, f"{name} {what}: max |d| {err:.2e} > {TOL:.0e}"
  assert ref.max() > 0.9, "the reference finds no text: not a meaningful input"
  assert ((ours > 0.3) == (ref > 0.3)).mean() > 0.999  # the masks DB post-processing uses
  return ours, ref


def test_synthetic_image_matches_onnxruntime(pair):
  _compare(pair, _normalize(_synthetic()), f"synthetic {H}x{W}")


@pytest.mark.parametrize("image", REAL_IMAGES)
def test_real_image_matches_onnxruntime(pair, ocr_images_dir, image):
  img = cv2.imread(str(ocr_images_dir / image))
  assert img is not None, image
  _compare(pair, _normalize(img), f"{image} {H}x{W}")


def test_registered_and_sides_checked():
  for name in MODELS:
    assert name in registry.model_names("det") and name not in registry.model_names()
  model = registry.get_model("PP-OCRv6_tiny_det", kind="det")(deploy=True)
  with pytest.raises(ValueError, match="multiples of 32"):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 48, 64, 3))))


def test_importer_rejects_the_other_generation():
  with pytest.raises(onnx_import.OnnxImportError, match="expected a conv"):
    onnx_import.import_det_onnx(official.official_onnx_path("PP-OCRv5_mobile_det"),
                                "PP-OCRv6_tiny_det")
  with pytest.raises(onnx_import.OnnxImportError, match="PPLCNetV4 tiny"):
    onnx_import.import_det_onnx(official.official_onnx_path("PP-OCRv6_small_det"),
                                "PP-OCRv6_tiny_det")  # same layers, other widths
  with pytest.raises(onnx_import.OnnxImportError, match="no ONNX importer"):
    onnx_import.import_det_onnx(official.official_onnx_path("PP-OCRv6_small_det"),
                                "PP-OCRv6_medium_det")


def _random_stats(variables, seed: int):
  """Training-form variables with batch statistics drawn at random (the fusions' input)."""
  rng = np.random.default_rng(seed)

  def draw(path, a):
    if path[0].key != "batch_stats":
      return np.asarray(a)
    if path[-1].key == "var":
      return rng.uniform(0.5, 1.5, a.shape).astype(np.float32)
    return rng.normal(0.0, 0.1, a.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, variables)


def test_v6_deploy_variables_fuse_backbone_and_neck():
  """PaddleOCR's rep() (RepDWConv, Conv+BN, DilatedReparamBlock) as deploy_variables: the
  deploy backbone + neck compute the training form's eval output."""
  size, (channels, kernel) = "tiny", detector.V6_DET["tiny"]
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 64, 64, 3)), jnp.float32)
  with settings.conv_impl("xla"):
    bb, neck = pplcnetv4.PPLCNetV4Det(size), det_replk.RepLKFPN(channels, kernel)
    v_bb = _random_stats(bb.init(jax.random.key(0), x), 1)
    f = bb.apply(v_bb, x)
    v_neck = _random_stats(neck.init(jax.random.key(1), f), 2)
    y = neck.apply(v_neck, f)
    train = {"params": {"backbone": v_bb["params"], "neck": v_neck["params"],
                        "head": {}},
             "batch_stats": {"backbone": v_bb["batch_stats"], "neck": v_neck["batch_stats"]}}
    dep = detector.deploy_variables(train, kernel)
    assert "batch_stats" not in dep  # every BatchNorm folded
    fd = pplcnetv4.PPLCNetV4Det(size, deploy=True).apply(
        {"params": dep["params"]["backbone"]}, x)
    yd = det_replk.RepLKFPN(channels, kernel, deploy=True).apply(
        {"params": dep["params"]["neck"]}, fd)
  for a, b in list(zip(f, fd)) + [(y, yd)]:
    scale = float(jnp.abs(a).max())
    assert float(jnp.abs(a - b).max()) <= 1e-4 * scale, (float(jnp.abs(a - b).max()), scale)


def test_v6_head_fusion():
  x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 8, 8, 64)), jnp.float32)
  with settings.conv_impl("xla"):
    head = det_head.Head()
    v = _random_stats(head.init(jax.random.key(0), x), 4)
    y = head.apply(v, x)
    fused = det_head.fuse_head(v["params"], v["batch_stats"])
    yd = det_head.Head(fuse_bn=True).apply({"params": fused}, x)
  assert float(jnp.abs(y - yd).max()) <= 1e-5
