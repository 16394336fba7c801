"""`--config.mode=predict` with an `ocr` config section (configs/ocr.py): the OCR pipeline
over files and directories, printed and saved as PaddleX saves OCR results."""
from __future__ import annotations

import collections
import os
import sys
import time

from textrec.inference import inputs as inputs_lib


def pipeline_from_config(config, recognizer=None):
  """An OCRPipeline from config.ocr (+ config.model.name / config.predict.model_dir for the
  recognizer, unless `recognizer` is given)."""
  from textrec.pipelines import ocr  # pylint: disable=g-import-not-at-top

  o = config.ocr
  params = dict(use_textline_orientation=bool(o.use_textline_orientation),
                text_det_limit_side_len=int(o.text_det_limit_side_len),
                text_det_limit_type=str(o.text_det_limit_type),
                text_det_thresh=float(o.text_det_thresh),
                text_det_box_thresh=float(o.text_det_box_thresh),
                text_det_unclip_ratio=float(o.text_det_unclip_ratio),
                text_rec_score_thresh=float(o.text_rec_score_thresh))
  common = dict(det_model=o.det_model, det_model_dir=o.det_model_dir or None,
                cls_model=o.cls_model, cls_model_dir=o.cls_model_dir or None,
                textline_orientation_thresh=float(o.textline_orientation_thresh),
                text_recognition_batch_size=int(config.predict.batch_size), **params)
  if recognizer is None:
    return ocr.create_pipeline(o.pipeline, rec_model=config.model.name,
                               rec_model_dir=config.predict.model_dir or None,
                               rec_dict_path=config.data.dict_path or None, **common)
  return ocr.create_pipeline(o.pipeline, recognizer=recognizer, **common)


def run(config) -> int:
  """Reads config.predict.input (image, directory or comma list), prints each image's lines
  and saves `<stem>_ocr_res_img.png` / `<stem>_res.json` under config.predict.output_dir
  (default <output_dir>/predict), then a summary line. Exit code 0; 1 when an input failed
  or none was read; 2 on bad config."""
  from textrec import checks  # pylint: disable=g-import-not-at-top

  p = config.predict
  try:
    pipe = pipeline_from_config(config)
  except (FileNotFoundError, ValueError, KeyError, NotImplementedError,
          ModuleNotFoundError) as e:
    print(f"predict: cannot load the OCR pipeline: {e}", file=sys.stderr)
    return 2
  out_dir = checks.predict_output_dir(config)
  os.makedirs(out_dir, exist_ok=True)
  n_ok, n_lines, failed, skipped = 0, 0, collections.Counter(), collections.Counter()
  t0 = time.perf_counter()
  for res in pipe.predict(checks.predict_inputs(p.input)):
    if res.error is not None:
      inputs_lib.tally_error(res.error, res.input_path, failed, skipped, "predict")
      continue
    n_ok += 1
    n_lines += len(res.rec_texts)
    name = res.input_path or f"array {res.index}"
    print(f"{name}: {len(res.rec_texts)} lines ({sum(res.timings.values()):.2f} s)")
    for text, score in zip(res.rec_texts, res.rec_scores):
      print(f"  {score:.3f}  {text}")
    if p.save_img:
      res.save_to_img(out_dir)
    if p.save_json:
      res.save_to_json(out_dir)
  by = inputs_lib.by_reason
  summary = f"{n_ok} images read ({n_lines} lines)"
  summary += f", {sum(failed.values())} failed" + (f" ({by(failed)})" if failed else "")
  if skipped:
    summary += f", {sum(skipped.values())} skipped ({by(skipped)})"
  print(f"predict: {summary} in {time.perf_counter() - t0:.1f} s; results in {out_dir}",
        file=sys.stderr)
  return 1 if failed or not n_ok else 0
