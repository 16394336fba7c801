"""PaddleX's orientation classifiers PP-LCNet_x1_0_textline_ori and PP-LCNet_x1_0_doc_ori
(textrec/models/pplcnet.py) with the official weights imported from ONNX, through the
pipeline's loaders (textrec/pipelines/orientation.py, doc_orientation.py), against the official
ONNX files in onnxruntime on the same pre-processed inputs: text drawn at test time with
cv2.putText (and, with ../shared, a few of its OCR images), turned each way with cv2.rotate.
Then what the official model does with them: the page angle, upright / upside-down lines.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import official_onnx
import rendered_words
from textrec.errors import InputError, UsageError
from textrec.formats import official_files
from textrec.pipelines import cls_preprocess, rotate
from textrec.pipelines.doc_orientation import DocOrientation, load_doc_orientation
from textrec.pipelines.orientation import TextlineOrientation, load_orientation
from textrec.weights import onnx_import

TEXTLINE, DOC = "PP-LCNet_x1_0_textline_ori", "PP-LCNet_x1_0_doc_ori"
TOL = 1e-4  # max |Δprob| against onnxruntime
BATCH = 8   # textline rows per forward call (one compiled shape)
TURNS = (None, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE)
ANGLE_OF_TURN = {None: 0, cv2.ROTATE_90_CLOCKWISE: 90, cv2.ROTATE_180: 180,
                 cv2.ROTATE_90_COUNTERCLOCKWISE: 270}
LINES = ("The quick brown fox jumps over", "Invoice total: 1,024.50 EUR",
         "Station Road, Platform 3", "Meeting at 10:30 in room B2", "Lorem ipsum dolor sit amet",
         "Keep left, do not enter", "PP-OCRv5 orientation test", "north gate 17 / south gate 4")
PAGE_WORDS = ("the of and to in is that for it as with was on be by this are at from or an "
              "which have not invoice total page report number date").split()
OCR_IMAGES = ("img_10.jpg", "french_0.jpg", "254.jpg")
# The documents among them (book pages, letters), where the page angle is meaningful; on the
# scene photos (img_*.jpg) the official model is often wrong, e.g. img_10.jpg upright -> 180.
DOC_IMAGES = ("254.jpg", "french_0.jpg", "ger_1.jpg", "ger_2.jpg")


def _turn(img: np.ndarray, code) -> np.ndarray:
  return img if code is None else cv2.rotate(img, code)


def _lines() -> list[np.ndarray]:
  """Black-on-white single text lines, BGR uint8."""
  out = []
  for i, text in enumerate(LINES):
    font, scale, thick = rendered_words.FONTS[i % 4], 0.9 + 0.1 * (i % 3), 1 + i % 2
    (w, h), base = cv2.getTextSize(text, font, scale, thick)
    img = np.full((h + base + 12, w + 12, 3), 255, np.uint8)
    cv2.putText(img, text, (6, 6 + h), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    out.append(img)
  return out


def _page(seed: int) -> np.ndarray:
  """A letter-shaped page (1100 x 850) of random words, BGR uint8."""
  rng = np.random.default_rng(seed)
  img = np.full((1100, 850, 3), 255, np.uint8)
  for y in range(60, 1050, 38):
    cv2.putText(img, " ".join(rng.choice(PAGE_WORDS, 7)), (50, y), cv2.FONT_HERSHEY_SIMPLEX,
                0.9, (0, 0, 0), 2, cv2.LINE_AA)
  return img


@pytest.fixture(scope="module")
def textline():
  """(the pipeline's TextlineOrientation, onnxruntime x [B, 80, 160, 3] -> [B, 2])."""
  return (load_orientation(TEXTLINE, batch_size=BATCH),
          official_onnx.session(official_files.onnx_path(TEXTLINE)))


@pytest.fixture(scope="module")
def doc():
  """(the pipeline's DocOrientation, onnxruntime x [B, 224, 224, 3] -> [B, 4])."""
  return (load_doc_orientation(DOC),
          official_onnx.session(official_files.onnx_path(DOC)))


def _textline_gap(textline, crops: list[np.ndarray]) -> float:
  ours, ref = textline
  worst = 0.0
  for s in range(0, len(crops), BATCH):
    x = np.zeros((BATCH, 80, 160, 3), np.float32)
    chunk = crops[s:s + BATCH]
    for k, c in enumerate(chunk):
      x[k] = cls_preprocess.textline_input(c)
    a, b = np.asarray(ours.forward(x))[:len(chunk)], ref(x)[:len(chunk)]
    assert (a.argmax(-1) == b.argmax(-1)).all()
    worst = max(worst, float(np.abs(a - b).max()))
  return worst


def _doc_gap(doc, pages: list[np.ndarray]) -> float:
  ours, ref = doc
  worst = 0.0
  for page in pages:
    x = cls_preprocess.doc_input(page)[None]
    a, b = np.asarray(ours.forward(x)), ref(x)
    assert a.argmax(-1) == b.argmax(-1)
    worst = max(worst, float(np.abs(a - b).max()))
  return worst


def test_textline_matches_onnxruntime_on_drawn_text(textline):
  words = [im for im, _ in rendered_words.images()]
  crops = [_turn(c, t) for c in words[:8] + _lines()[:4] for t in TURNS]
  crops += [cv2.rotate(c, cv2.ROTATE_180) for c in words[8:]]
  gap = _textline_gap(textline, crops)
  print(f"{TEXTLINE}: max |dprob| {gap:.2e} over {len(crops)} drawn crops")
  assert gap <= TOL


def test_doc_matches_onnxruntime_on_drawn_pages(doc):
  pages = [_turn(_page(s), t) for s in range(2) for t in TURNS]
  pages += [_turn(_lines()[0], t) for t in TURNS]  # a single line as a "page" too
  gap = _doc_gap(doc, pages)
  print(f"{DOC}: max |dprob| {gap:.2e} over {len(pages)} drawn pages")
  assert gap <= TOL


def test_both_match_onnxruntime_on_ocr_images(ocr_images_dir, textline, doc):
  imgs = [cv2.imread(str(ocr_images_dir / n)) for n in OCR_IMAGES]
  turned = [_turn(im, t) for im in imgs for t in TURNS]
  gaps = _textline_gap(textline, turned), _doc_gap(doc, turned)
  print(f"ocr_images: max |dprob| {TEXTLINE} {gaps[0]:.2e}, {DOC} {gaps[1]:.2e}")
  assert max(gaps) <= TOL


def test_doc_angle_on_document_images(ocr_images_dir, doc):
  ours, _ = doc
  for name in DOC_IMAGES:
    img = cv2.imread(str(ocr_images_dir / name))
    assert [ours.predict(_turn(img, t))[0] for t in TURNS] == [0, 90, 180, 270], name


def test_doc_turns_drawn_pages_upright(doc):
  ours, _ = doc
  for seed in range(2):
    page = _page(seed)
    for t in TURNS:
      out, angle = ours(_turn(page, t))
      assert angle == ANGLE_OF_TURN[t]
      # PaddleX's rotate_image: upright, one pixel off cv2.rotate (pipelines/rotate.py).
      assert out.shape == page.shape
      dy, dx = {0: (0, 0), 90: (1, 0), 180: (1, 1), 270: (0, 1)}[angle]
      np.testing.assert_array_equal(out[dy:, dx:], page[:page.shape[0] - dy,
                                                         :page.shape[1] - dx])


def test_textline_turns_upside_down_lines(textline):
  ours, _ = textline
  lines = _lines()
  flipped = [cv2.rotate(c, cv2.ROTATE_180) for c in lines]
  out, angles, scores = ours(lines + flipped)
  assert angles == [0] * len(lines) + [1] * len(flipped)
  assert all(0.5 < s <= 1.0 for s in scores)
  for a, b in zip(out[:len(lines)], lines):
    assert a is b
  for a, b in zip(out[len(lines):], flipped):
    np.testing.assert_array_equal(a, rotate.rotate(b, 180))


def test_rotate_is_cv2_rotate_moved_one_pixel():
  img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
  assert rotate.rotate(img, 0) is img
  for angle, code, (dy, dx) in ((90, cv2.ROTATE_90_COUNTERCLOCKWISE, (1, 0)),
                                (180, cv2.ROTATE_180, (1, 1)),
                                (270, cv2.ROTATE_90_CLOCKWISE, (0, 1))):
    out, ref = rotate.rotate(img, angle), cv2.rotate(img, code)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out[dy:, dx:], ref[:ref.shape[0] - dy, :ref.shape[1] - dx])
    assert not out[:dy].any() and not out[:, :dx].any()
  with pytest.raises(ValueError):
    rotate.rotate(img, 360)


def test_preprocessing_is_paddlex_imagenet_rgb():
  bgr = np.zeros((300, 500, 3), np.uint8)
  bgr[..., 2] = 255  # pure red
  x = cls_preprocess.doc_input(bgr)
  assert x.shape == (224, 224, 3)
  want = (np.array([1.0, 0.0, 0.0]) - cls_preprocess.IMAGENET_MEAN) / cls_preprocess.IMAGENET_STD
  np.testing.assert_allclose(x[0, 0], want, atol=1e-6)  # RGB order
  assert cls_preprocess.resize_short(bgr, 256).shape == (256, 427, 3)  # 426.67 rounded
  assert cls_preprocess.textline_input(bgr).shape == (80, 160, 3)
  with pytest.raises(InputError, match="BGR image"):
    cls_preprocess.textline_input(np.zeros((10, 20), np.uint8))


def test_textline_threshold_semantics():
  probs = np.array([[0.4, 0.6], [0.95, 0.05], [0.05, 0.95]], np.float32)
  crops = [np.full((4, 6, 3), i, np.uint8) for i in range(3)]
  fwd = lambda x: probs[:len(x)]  # pylint: disable=unnecessary-lambda-assignment
  # PaddleX: top-1 class, no threshold.
  _, angles, scores = TextlineOrientation(TEXTLINE, fwd, batch_size=4)(crops)
  assert angles == [1, 0, 1] and scores == pytest.approx([0.6, 0.95, 0.95])
  # PaddleOCR 2.x's v2.0 classifier: turned only above cls_thresh 0.9.
  _, angles, _ = TextlineOrientation("ch_ppocr_mobile_v2.0_cls", fwd, batch_size=4)(crops)
  assert angles == [0, 0, 1]
  # An explicit threshold applies to either model.
  _, angles, _ = TextlineOrientation(TEXTLINE, fwd, batch_size=4, thresh=0.9)(crops)
  assert angles == [0, 0, 1]


def test_loaders_keep_the_two_models_apart():
  with pytest.raises(UsageError, match="load_doc_orientation"):
    load_orientation(DOC)
  with pytest.raises(UsageError, match="not a page orientation model"):
    load_doc_orientation(TEXTLINE)
  with pytest.raises(UsageError, match="not a page orientation model"):
    DocOrientation(TEXTLINE, lambda x: x)


def test_importer_names_paddleclas_pplcnet():
  sd = onnx_import.import_cls_onnx(official_files.onnx_path(TEXTLINE), num_classes=2)
  assert sd["conv1.conv.weight"].shape == (16, 3, 3, 3)
  assert sd["blocks6.1.se.conv2.bias"].shape == (512,)
  assert sd["last_conv.weight"].shape == (1280, 512, 1, 1)
  assert sd["fc.weight"].shape == (1280, 2) and len(sd) == 27 * 5 + 2 * 4 + 1 + 2  # 27 ConvBN, 2 SE
  with pytest.raises(onnx_import.OnnxImportError, match="with 2 channels on axis 1"):
    onnx_import.import_cls_onnx(official_files.onnx_path(DOC), num_classes=2)
