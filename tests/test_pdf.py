"""PDF input: pages rendered as PaddleX renders them, one OCR result per page with its
page_index, PaddleX's file names per page, and one-line errors (the right class) for
encrypted, truncated, too long and too large PDFs. The PDFs are made here (no files)."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pathlib
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

import rendered_words
from textrec.errors import InputError
from textrec.inference import inputs, pdf

pdfium = pytest.importorskip("pypdfium2")

PAGE_W, PAGE_H = 480, 320  # pixels at PaddleX's zoom 2: 240 x 160 pt
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _config_module(name: str):
  """configs/<name>.py as a module (configs/ocr.py puts configs/ on sys.path for common)."""
  sys.path.insert(0, str(CONFIGS))
  spec = importlib.util.spec_from_file_location(f"textrec_test_config_{name}",
                                                CONFIGS / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _pages() -> list[tuple[np.ndarray, list[str]]]:
  """Three white BGR pages [320, 480, 3], three of tests/rendered_words.py's words each."""
  words = rendered_words.images(9)
  out = []
  for p in range(3):
    page = np.full((PAGE_H, PAGE_W, 3), 255, np.uint8)
    texts = []
    for k in range(3):
      img, text = words[3 * p + k]
      y, x = 30 + 95 * k, 40 + 30 * k
      page[y:y + img.shape[0], x:x + img.shape[1]] = img
      texts.append(text)
    out.append((page, texts))
  return out


def _pdf_of(images: list[np.ndarray]) -> bytes:
  """A PDF (pypdfium2) with one page per BGR image, sized so PaddleX's zoom renders the
  image's own size."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  doc = pdfium.PdfDocument.new()
  for img in images:
    h, w = img.shape[:2]
    page = doc.new_page(w / pdf.ZOOM, h / pdf.ZOOM)
    obj = pdfium.PdfImage.new(doc)
    obj.set_bitmap(pdfium.PdfBitmap.from_pil(Image.fromarray(img[:, :, ::-1])))
    obj.set_matrix(pdfium.PdfMatrix().scale(w / pdf.ZOOM, h / pdf.ZOOM))
    page.insert_obj(obj)
    page.gen_content()
  buf = io.BytesIO()
  doc.save(buf)
  doc.close()
  return buf.getvalue()


# The standard security handler, revision 2 (RC4, 40-bit key; PDF 32000-1 7.6.3,
# algorithms 2-4), written out: pypdfium2 cannot encrypt.
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
  s, j = list(range(256)), 0
  for i in range(256):
    j = (j + s[i] + key[i % len(key)]) & 255
    s[i], s[j] = s[j], s[i]
  out, i, j = bytearray(), 0, 0
  for b in data:
    i = (i + 1) & 255
    j = (j + s[i]) & 255
    s[i], s[j] = s[j], s[i]
    out.append(b ^ s[(s[i] + s[j]) & 255])
  return bytes(out)


def _encrypted_pdf(user_pw: bytes = b"secret", owner_pw: bytes = b"owner") -> bytes:
  """One 200 x 100 pt page with a blue rectangle, readable only with a password."""
  pad = lambda pw: (pw + _PAD)[:32]  # noqa: E731
  file_id, perms = hashlib.md5(b"textrec test").digest(), -4
  o = _rc4(hashlib.md5(pad(owner_pw)).digest()[:5], pad(user_pw))
  key = hashlib.md5(pad(user_pw) + o + struct.pack("<i", perms) + file_id).digest()[:5]
  u = _rc4(key, _PAD)
  obj_key = hashlib.md5(key + (4).to_bytes(3, "little") + b"\0\0").digest()[:10]
  stream = _rc4(obj_key, b"0 0 1 rg 20 20 100 50 re f")
  objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
          b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
          b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
          b"/Resources << >> >>",
          b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
          b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
              o.hex().encode(), u.hex().encode(), perms)]
  out, offsets = bytearray(b"%PDF-1.4\n"), []
  for n, body in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
  xref = len(out)
  out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
  out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
  fid = file_id.hex().encode()
  out += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n"
          b"startxref\n%d\n%%%%EOF\n" % (len(objs) + 1, fid, fid, xref))
  return bytes(out)


def _blank_pdf(w_pt: float, h_pt: float) -> bytes:
  doc = pdfium.PdfDocument.new()
  doc.new_page(w_pt, h_pt)
  buf = io.BytesIO()
  doc.save(buf)
  return buf.getvalue()


@pytest.fixture(scope="module")
def doc():
  pages = _pages()
  return _pdf_of([p for p, _ in pages]), pages


def test_pages_render_as_paddlex_renders_them(doc):
  """render_pdf == PaddleX's PDFReaderBackend steps (pypdfium2 render at zoom 2, rotation 0,
  to PIL, RGB, cv2 RGB->BGR), page by page, and close to the images put in."""
  data, pages = doc
  got = pdf.render_pdf(data, "doc.pdf", max_pages=3, max_page_pixels=PAGE_W * PAGE_H)
  ref = pdfium.PdfDocument(data)
  assert len(got) == len(ref) == 3
  for i, (page, _) in enumerate(pages):
    want = ref[i].render(scale=2.0, rotation=0).to_pil().convert("RGB")
    want = cv2.cvtColor(np.array(want), cv2.COLOR_RGB2BGR)
    assert got[i].dtype == np.uint8 and got[i].flags.c_contiguous
    np.testing.assert_array_equal(got[i], want)
    assert got[i].shape == page.shape
    assert np.abs(got[i].astype(int) - page).mean() < 8  # the image, resampled
  assert pdf.is_pdf(data) and not pdf.is_pdf(cv2.imencode(".png", pages[0][0])[1].tobytes())


def test_page_rotation_and_keep_first():
  """A page's own /Rotate is applied (PaddleX adds none); keep_first renders the first
  max_pages (PaddleX serving's max_num_input_imgs) instead of refusing."""
  pdoc = pdfium.PdfDocument.new()
  for _ in range(3):
    pdoc.new_page(100, 50)
  pdoc[2].set_rotation(90)
  buf = io.BytesIO()
  pdoc.save(buf)
  data = buf.getvalue()
  shapes = [p.shape for p in pdf.render_pdf(data, "r.pdf", max_pages=None, max_page_pixels=None)]
  assert shapes == [(100, 200, 3), (100, 200, 3), (200, 100, 3)]
  assert len(pdf.render_pdf(data, "r.pdf", max_pages=2, max_page_pixels=None,
                            keep_first=True)) == 2


@pytest.mark.parametrize("case,cls,want", [
    ("truncated", pdf.BadPdf, "bad.pdf: not a readable PDF (corrupt or truncated)"),
    ("encrypted", pdf.BadPdf, "bad.pdf: the PDF is encrypted (password-protected)"),
    ("empty", pdf.BadPdf, "bad.pdf: empty file"),
    ("pages", pdf.PdfTooLarge, "bad.pdf: 3 pages, more than the 2 allowed"),
    ("bomb", pdf.PdfTooLarge, "bad.pdf: page 1: 20000 x 20000 pt renders 40000x40000 pixels "
                              "at 144 dpi, more than the 16000000 allowed"),
])
def test_bad_pdfs_are_one_line_errors(doc, case, cls, want, monkeypatch):
  data = {"truncated": doc[0][:len(doc[0]) // 2], "encrypted": _encrypted_pdf(), "empty": b"",
          "pages": doc[0]}.get(case)
  if case == "bomb":  # a small first page, then the bomb: refused before page 0 is rendered
    two = pdfium.PdfDocument(_blank_pdf(100, 100))
    two.import_pages(pdfium.PdfDocument(_blank_pdf(20000, 20000)))
    buf = io.BytesIO()
    two.save(buf)
    data = buf.getvalue()
    monkeypatch.setattr(pdf, "render_page", lambda *a: pytest.fail("rendered a page"))
  with pytest.raises(cls) as e:
    pdf.render_pdf(data, "bad.pdf", max_pages=2 if case == "pages" else 10,
                   max_page_pixels=16_000_000)
  msg = str(e.value)
  assert msg.startswith(want) and "\n" not in msg, msg
  assert isinstance(e.value, InputError)
  assert e.value.status == (413 if cls is pdf.PdfTooLarge else 422)


def test_the_encrypted_pdf_is_real():
  """The hand-made encrypted PDF opens with its password and shows its (decrypted)
  rectangle: the error above is PDFium's answer to a password-protected file."""
  d = pdfium.PdfDocument(_encrypted_pdf(), password="secret")
  px = d[0].render(scale=1).to_numpy()
  assert tuple(px[50, 50]) == (255, 0, 0) and tuple(px[5, 5]) == (255, 255, 255)  # BGR


def test_bad_pdf_in_a_list_is_one_failed_item(doc, tmp_path):
  """A directory with a PDF (pages), an encrypted PDF and an image; bytes of a truncated
  PDF: each bad one is one item with an error naming it, the others still come."""
  data, pages = doc
  d = tmp_path / "in"
  d.mkdir()
  (d / "a.pdf").write_bytes(data)
  (d / "b_locked.pdf").write_bytes(_encrypted_pdf())
  cv2.imwrite(str(d / "c.png"), pages[0][0])
  (d / "d_misnamed.jpg").write_bytes(_blank_pdf(50, 40))  # a PDF by its content
  items = list(inputs.iter_inputs([str(d), data[:100]]))
  got = [(it.index, it.input_path and it.input_path[len(str(d)) + 1:], it.page_index,
          it.error is None) for it in items]
  assert got == [(0, "a.pdf", 0, True), (1, "a.pdf", 1, True), (2, "a.pdf", 2, True),
                 (3, "b_locked.pdf", None, False), (4, "c.png", None, True),
                 (5, "d_misnamed.jpg", 0, True), (6, None, None, False)]
  assert items[3].error.startswith(f"{d / 'b_locked.pdf'}: the PDF is encrypted")
  assert items[6].error == "input[1] (bytes): not a readable PDF (corrupt or truncated)"
  assert items[5].image.shape == (80, 100, 3)
  limited = list(inputs.iter_inputs(str(d / "a.pdf"), max_pdf_pages=2))
  assert len(limited) == 1 and "3 pages, more than the 2 allowed" in limited[0].error


def test_a_page_that_fails_is_one_failed_item(doc, monkeypatch):
  """A page PDFium cannot render fails alone (its page_index, the message naming it); the
  pages after it still come."""
  render = pdf.render_page

  def flaky(d, i, name, zoom=pdf.ZOOM):
    if i == 1:
      raise pdf.BadPdf(f"{name}: page {i}: cannot render (broken content)")
    return render(d, i, name, zoom)

  monkeypatch.setattr(pdf, "render_page", flaky)
  items = list(inputs.iter_inputs(doc[0]))
  assert [(it.page_index, it.error) for it in items] == [
      (0, None), (1, "input (bytes): page 1: cannot render (broken content)"), (2, None)]


def test_missing_pypdfium2_names_the_extra(monkeypatch):
  from textrec.errors import MissingExtraError  # pylint: disable=g-import-not-at-top

  monkeypatch.setitem(sys.modules, "pypdfium2", None)
  with pytest.raises(MissingExtraError, match=r"textrec\[serve\]"):
    pdf.render_pdf(b"%PDF-1.4", "x.pdf", max_pages=None, max_page_pixels=None)


def test_serve_limits_from_config():
  from textrec.errors import UsageError  # pylint: disable=g-import-not-at-top
  from textrec.serving import server  # pylint: disable=g-import-not-at-top

  s = _config_module("common").serve_section()
  lim = server.limits_of(s)
  assert (lim.max_pdf_pages, lim.max_pdf_page_pixels) == (10, 16_000_000)
  s.max_pdf_pages = 0
  assert server.limits_of(s).max_pdf_pages is None
  s.max_pdf_pages, s.max_pdf_page_pixels = 10, 0
  with pytest.raises(UsageError, match="serve.max_pdf_page_pixels must be > 0"):
    server.limits_of(s)


@pytest.fixture(scope="module")
def pipe():
  import textrec  # pylint: disable=g-import-not-at-top

  # pages at their own size (limit_type "max" does not scale up), lines in width buckets:
  # few compiled shapes
  return textrec.create_pipeline("OCR", use_doc_orientation_classify=False,
                                 use_textline_orientation=False, text_det_limit_type="max",
                                 text_det_limit_side_len=960, text_rec_padding="bucket")


def test_pipeline_gives_a_result_per_page(pipe, doc, tmp_path):
  """A PDF path -> one result per page (page_index 0..2, the PDF as input_path), each equal
  to the pipeline on that page rendered alone; the words drawn on each page are read."""
  data, pages = doc
  path = tmp_path / "doc.pdf"
  path.write_bytes(data)
  results = list(pipe.predict([str(path), pages[0][0]]))
  rendered = pdf.render_pdf(data, "doc.pdf", max_pages=None, max_page_pixels=None)
  assert [(r.index, r.page_index, r.input_path) for r in results] == [
      (0, 0, str(path)), (1, 1, str(path)), (2, 2, str(path)), (3, None, None)]
  for res, img, (_, words) in zip(results, rendered, pages):
    alone = next(pipe.predict(img))
    assert res.ok and res.rec_texts == alone.rec_texts
    np.testing.assert_array_equal(res.rec_polys, alone.rec_polys)
    np.testing.assert_array_equal(res.rec_boxes, alone.rec_boxes)
    assert res.json["res"]["page_index"] == res.page_index and alone.page_index is None
    assert sum(w in res.rec_texts for w in words) >= 2, (words, res.rec_texts)
  out = tmp_path / "out"
  names = sorted(pathlib.Path(f).name for r in results[:3]
                 for f in (r.save_to_json(out), r.save_to_img(out)))
  assert names == ["doc_0_ocr_res_img.png", "doc_0_res.json", "doc_1_ocr_res_img.png",
                   "doc_1_res.json", "doc_2_ocr_res_img.png", "doc_2_res.json"]


def test_cli_predict_writes_a_file_per_page(pipe, doc, tmp_path, monkeypatch, capsys):
  """`--config.mode=predict --config.predict.input=doc.pdf` (configs/ocr.py, in-process on
  this module's pipeline): doc_<page>_res.json / doc_<page>_ocr_res_img.png, PaddleX's
  names; an encrypted PDF beside it is one failure line and exit code 1."""
  from textrec.pipelines import predict as predict_lib  # pylint: disable=g-import-not-at-top

  (tmp_path / "doc.pdf").write_bytes(doc[0])
  (tmp_path / "locked.pdf").write_bytes(_encrypted_pdf())
  config = _config_module("ocr").get_config()
  config.predict.input = f"{tmp_path / 'doc.pdf'},{tmp_path / 'locked.pdf'}"
  config.predict.output_dir = str(tmp_path / "out")
  monkeypatch.setattr(predict_lib, "pipeline_from_config", lambda c, recognizer=None: pipe)
  assert predict_lib.run(config) == 1
  out = capsys.readouterr()
  assert f"{tmp_path / 'doc.pdf'} page 2: " in out.out
  assert f"predict: error: {tmp_path / 'locked.pdf'}: the PDF is encrypted" in out.err
  assert "3 images read" in out.err and "1 failed" in out.err
  files = sorted(p.name for p in (tmp_path / "out").iterdir())
  assert files == ["doc_0_ocr_res_img.png", "doc_0_res.json", "doc_1_ocr_res_img.png",
                   "doc_1_res.json", "doc_2_ocr_res_img.png", "doc_2_res.json"]
  res = json.loads((tmp_path / "out" / "doc_1_res.json").read_text())["res"]
  assert res["page_index"] == 1 and res["input_path"] == str(tmp_path / "doc.pdf")


@pytest.mark.slow
def test_cli_command_on_a_pdf(doc, tmp_path):
  """The command itself (a fresh process: loads and compiles the default OCR pipeline)."""
  (tmp_path / "doc.pdf").write_bytes(doc[0])
  repo = CONFIGS.parent
  r = subprocess.run([sys.executable, "-m", "textrec.main", "--config=configs/ocr.py",
                      "--config.mode=predict", f"--config.predict.input={tmp_path / 'doc.pdf'}",
                      f"--config.predict.output_dir={tmp_path / 'out'}"],
                     cwd=repo, capture_output=True, text=True, timeout=900,
                     env={**os.environ, "PYTHONPATH": str(repo)})
  assert r.returncode == 0, r.stderr[-2000:]
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
      "doc_0_ocr_res_img.png", "doc_0_res.json", "doc_1_ocr_res_img.png", "doc_1_res.json",
      "doc_2_ocr_res_img.png", "doc_2_res.json"]


def test_served_pdf_pages_and_bad_pdfs(pipe, doc):
  """/ocr with a 3-page PDF (fileType 0, and fileType null: by its bytes) -> 3 ocrResults, each
  the pipeline's result on that page rendered alone, PaddleX's PDF dataInfo; truncated,
  encrypted, too long and too large PDFs -> one line with 422 / 413, and the server keeps
  answering."""
  import base64  # pylint: disable=g-import-not-at-top
  from test_serving import fake_fn, post, serving  # pylint: disable=g-import-not-at-top
  from textrec.serving import app as app_lib  # pylint: disable=g-import-not-at-top
  from textrec.serving import protocol  # pylint: disable=g-import-not-at-top
  from textrec.serving import server as server_lib  # pylint: disable=g-import-not-at-top

  data, _ = doc
  rendered = pdf.render_pdf(data, "doc.pdf", max_pages=None, max_page_pixels=None)
  alone = [protocol.jsonable(app_lib.prune(next(pipe.predict(p)).json["res"]))
           for p in rendered]
  limits = app_lib.Limits(timeout_s=600, max_pdf_pages=3, max_pdf_page_pixels=4_000_000)
  app = app_lib.create_app(fake_fn(), limits, pipeline=server_lib.ServedOCR(pipe))

  def ocr(url, pdf_bytes, **fields):
    body = {"file": base64.b64encode(pdf_bytes).decode(), "visualize": False, **fields}
    status, _, answer = post(url, "/ocr", json.dumps(body).encode())
    return status, answer

  with serving(app) as url:
    for fields in ({"fileType": 0}, {}):
      status, a = ocr(url, data, **fields)
      assert status == 200, a
      assert [e["prunedResult"] for e in a["result"]["ocrResults"]] == alone
      assert a["result"]["dataInfo"] == {"type": "pdf", "numPages": 3, "pages": [
          {"width": PAGE_W, "height": PAGE_H}] * 3}
    four = _pdf_of([p for p, _ in _pages()] + [_pages()[0][0]])
    for bad, want_status, words in ((data[:len(data) // 2], 422, "file"),
                                    (_encrypted_pdf(), 422, "password"),
                                    (four, 413, "4 pages"),
                                    (_blank_pdf(20000, 20000), 413, "pixels")):
      status, a = ocr(url, bad, fileType=0)
      assert status == want_status and a["errorCode"] == want_status, a
      assert "\n" not in a["errorMsg"] and words in a["errorMsg"], a["errorMsg"]
      status, a = ocr(url, data, fileType=0)  # still answering
      assert status == 200 and len(a["result"]["ocrResults"]) == 3
