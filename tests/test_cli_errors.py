"""A user's mistakes on the command line: one `error: ...` line naming the problem and the
fix, exit code 2, no traceback. Run as subprocesses, as a user runs textrec."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(*args: str, config: str = "configs/v4_mobile.py", code: str | None = None,
         **env: str) -> subprocess.CompletedProcess:
  e = {k: v for k, v in os.environ.items() if k != "TEXTREC_DEBUG"}
  e.update(JAX_PLATFORMS="cpu", TEXTREC_HUGEPAGES="0", **env)
  cmd = ([sys.executable, "-c", code] if code else [sys.executable, "-m", "textrec.main"])
  cmd += ([f"--config={config}"] if config else []) + list(args)
  return subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=300)


def _one_error(r: subprocess.CompletedProcess, *expected: str) -> str:
  """Asserts exit code 2 and a single `error:` line holding every `expected` text."""
  assert "Traceback" not in r.stderr + r.stdout, r.stderr[-2000:]
  assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
  for text in expected:
    assert text in lines[0], (text, lines[0])
  return lines[0]


# ------------------------------------------------------------------ flags and config file


def test_misspelt_key_names_the_right_one():
  _one_error(_run("--config.mode=predict", "--config.predict.inpt=a.png"),
             "--config.predict.inpt", "did you mean --config.predict.input=a.png?")


def test_misspelt_section():
  _one_error(_run("--config.predikt.input=a.png"), "did you mean --config.predict.input")


def test_wrong_config_path_lists_the_configs():
  _one_error(_run(config="configs/v4_mobil.py"), "--config=configs/v4_mobil.py: no such file",
             "configs/v4_mobile.py")


def test_missing_config():
  _one_error(_run(config=""), "--config=configs/<model>.py is required")


def test_not_a_config_file():
  _one_error(_run(config="README.md"), "--config=README.md: cannot load it as a config file")


@pytest.mark.parametrize("flag,expected", [
    ("--config.predict.batch_size=abc", "expected an integer (default: 6)"),
    ("--config.predict.save_img=maybe", "expected True or False"),
    ("--config.optim.lr=fast", "expected a number"),
    ("--config.predict=x", "a section, not a value"),
])
def test_wrong_type(flag, expected):
  _one_error(_run(flag), flag.split("=")[0], expected)


def test_unknown_flag():
  _one_error(_run("--epochs=3"), "--epochs: unknown flag", "--config.SECTION.KEY=VALUE")


def test_missing_value():
  _one_error(_run("--config.predict.input"), "missing value")


def test_debug_shows_the_traceback():
  r = _run("--config.predict.inpt=a.png", TEXTREC_DEBUG="1")
  assert r.returncode != 0 and "Traceback" in r.stderr


# ------------------------------------------------------------------ values and paths


def test_unknown_mode_lists_the_modes():
  _one_error(_run("--config.mode=infer"), "--config.mode=infer: unknown mode", "predict")


@pytest.mark.parametrize("flags,expected", [
    (("--config.mode=predict", "--config.predict.input=README.md",
      "--config.predict.batch_size=0"), "--config.predict.batch_size=0: must be >= 1"),
    (("--config.train.steps=-1",), "--config.train.steps=-1: must be >= 0"),
    (("--config.optim.lr=0",), "--config.optim.lr=0.0: must be > 0"),
    (("--config.mode=export", "--config.export.format=tflite"),
     "--config.export.format=tflite: must be one of onnx, saved_model, all"),
])
def test_out_of_range_values(flags, expected):
  _one_error(_run(*flags), expected)


def test_wrong_kernel_choice_in_the_environment():
  _one_error(_run("--config.mode=predict", "--config.predict.input=README.md",
                  TEXTREC_XLA_CPU_LIBS="fast"),
             "--config.runtime.xla_cpu_libs='fast': one of auto, default, ynn_off")


def test_wrong_kernel_choice_in_the_config():
  _one_error(_run("--config.mode=predict", "--config.predict.input=README.md",
                  "--config.runtime.xla_cpu_libs=eigen"),
             "--config.runtime.xla_cpu_libs='eigen': one of auto, default, ynn_off")


def test_predict_without_input():
  _one_error(_run("--config.mode=predict"), "--config.predict.input=PATH is required")


def test_predict_missing_input():
  _one_error(_run("--config.mode=predict", "--config.predict.input=no/such.png"),
             "--config.predict.input=no/such.png: no such file or directory")


def test_predict_comma_list_of_missing_paths_names_them(tmp_path):
  """Only when no input exists is it a usage error (a missing one among others fails alone:
  tests/test_newcomer.py)."""
  _one_error(_run("--config.mode=predict",
                  f"--config.predict.input={tmp_path}/x.png,no/y.png"),
             "no such file or directory", f"{tmp_path}/x.png", "no/y.png")


def test_predict_folder_without_images(tmp_path):
  (tmp_path / "notes.txt").write_text("hello")
  _one_error(_run("--config.mode=predict", f"--config.predict.input={tmp_path}"),
             "no image files there (1 other files")


def test_evaluate_missing_weight_path():
  _one_error(_run("--config.mode=evaluate", "--config.evaluate.weight_path=no/such/ckpt"),
             "--config.evaluate.weight_path=no/such/ckpt: no such file or directory",
             ".pdparams")


def test_train_missing_dataset_dir():
  _one_error(_run("--config.dataset_dir=no/such/dir"),
             "--config.dataset_dir=no/such/dir: no such directory", "train.txt")


def test_train_dataset_without_train_txt(tmp_path):
  (tmp_path / "val.txt").write_text("images/a.png\tabc\n")
  _one_error(_run(f"--config.dataset_dir={tmp_path}"), f"{tmp_path}: no train.txt there")


def test_train_missing_pretrained():
  _one_error(_run("--config.train.pretrained=no/such.pdparams"),
             "--config.train.pretrained=no/such.pdparams: no such file or directory")


def test_unknown_model_lists_the_registered_ones():
  line = _one_error(_run("--config.model.name=PP-OCRv4_mobile", "--config.mode=evaluate"),
                    "unknown model 'PP-OCRv4_mobile'", "PP-OCRv4_mobile_rec", "ch_SVTRv2_rec")
  assert "official" not in line


def test_registered_model_without_shipped_weights_says_where_they_go():
  _one_error(_run("--config.mode=evaluate", config="configs/svtrv2.py"),
             "ch_SVTRv2_rec has no weights shipped with textrec",
             "--config.evaluate.weight_path=PATH", ".pdparams")


def test_export_without_its_extra_names_the_extra():
  code = ("import importlib.util as u, runpy, sys; f = u.find_spec; "
          "u.find_spec = lambda n, *a: None if n == 'jax2onnx' else f(n, *a); "
          "sys.argv[0] = 'textrec.main'; runpy.run_module('textrec.main', run_name='__main__')")
  _one_error(_run("--config.mode=export", code=code), "'export' extra", "pip install -e '.[export]'")


# ------------------------------------------------------------------ a working predict


def test_predict_prints_a_few_lines_and_a_summary(tmp_path):
  """A folder (one image and a notes.txt) plus a 1x1 image, given as a comma list: the two
  results and the summary, nothing from third parties; notes.txt skipped, exit code 0."""
  d = tmp_path / "in"
  d.mkdir()
  img = np.full((48, 160, 3), 255, np.uint8)
  cv2.putText(img, "hello", (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 2)
  cv2.imwrite(str(d / "word.png"), img)
  (d / "notes.txt").write_text("not an image")
  dot = tmp_path / "dot.png"
  cv2.imwrite(str(dot), np.zeros((1, 1, 3), np.uint8))
  r = _run("--config.mode=predict", f"--config.predict.input={d},{dot}",
           f"--config.output_dir={tmp_path / 'out'}")
  assert r.returncode == 0, r.stderr[-2000:]
  out, err = r.stdout.strip().splitlines(), r.stderr.strip().splitlines()
  assert len(out) == 2 and all("'rec_text'" in ln for ln in out), r.stdout
  assert len(err) == 1, r.stderr
  assert err[0].startswith("predict: 2 recognised (1 with no text read), 0 failed, "
                           "1 skipped (1 not an image file)"), err[0]


def test_train_data_counts_a_missing_image_and_names_it_once(tmp_path, caplog):
  """A label line whose image is missing: counted in the training data's info (the train
  log's "drops"), its record named once however often it is drawn."""
  sys.path.insert(0, os.path.dirname(__file__))
  sys.path.insert(0, str(REPO / "configs"))
  import tiny  # pylint: disable=g-import-not-at-top
  import train_utils  # pylint: disable=g-import-not-at-top

  from textrec.data import pipeline  # pylint: disable=g-import-not-at-top

  data = pathlib.Path(train_utils.make_dataset(tmp_path / "data", n_train=8, n_val=4))
  (data / "images" / "train_3.png").unlink()
  cfg = tiny.get_config()
  with cfg.unlocked():
    cfg.dataset_dir, cfg.data.num_workers, cfg.data.augment = str(data), 0, False
    cfg.train.batch_size = 4
  it, info = pipeline.train_iter_from_config(cfg)
  assert info["missing_images"] == 1 and info["records"] == 8
  replaced = sum(int(next(it)["replaced"].sum()) for _ in range(6))  # three epochs
  assert replaced == 3
  named = [r.getMessage() for r in caplog.records if "train.txt:4: image not found" in
           r.getMessage()]
  assert len(named) == 1, named
