"""`--config.mode=predict` with an `ocr` config section (configs/ocr.py): the OCR pipeline
over files and directories, printed and saved as PaddleX saves OCR results."""
from __future__ import annotations

from textrec.inference import predict_files
from textrec.pipelines import ocr


def pipeline_from_config(config, recognizer=None, backend: str | None = None,
                         precision: str | None = None):
  """An OCRPipeline from config.ocr (+ config.model.name / config.predict.model_dir for the
  recognizer, unless `recognizer` is given); None / "" settings are the ocr_version's.
  backend / precision: for every model (default config.predict's)."""
  o = config.ocr
  params = {k: o[k] for k in (
      "use_doc_orientation_classify", "use_doc_unwarping", "use_textline_orientation",
      "text_det_limit_side_len", "text_det_limit_type", "text_det_max_side_limit",
      "text_det_thresh", "text_det_box_thresh", "text_det_unclip_ratio",
      "text_rec_score_thresh") if o[k] is not None}
  common = dict(ocr_version=o.ocr_version, det_model=o.det_model or None,
                det_model_dir=o.det_model_dir or None, cls_model=o.cls_model or None,
                cls_model_dir=o.cls_model_dir or None,
                doc_orientation_model=o.doc_orientation_model,
                doc_orientation_model_dir=o.doc_orientation_model_dir or None,
                doc_unwarping_model_dir=o.doc_unwarping_model_dir or None,
                textline_orientation_thresh=o.textline_orientation_thresh,
                text_rec_padding=o.text_rec_padding,
                text_recognition_batch_size=int(config.predict.batch_size),
                backend=backend or config.predict.get("backend", "auto"),
                precision=precision or config.predict.get("precision", "f32"), **params)
  if recognizer is None:
    return ocr.create_pipeline(o.pipeline, rec_model=config.model.name or None,
                               rec_model_dir=config.predict.model_dir or None,
                               rec_dict_path=config.data.dict_path or None, **common)
  return ocr.create_pipeline(o.pipeline, recognizer=recognizer, **common)


def _show(res) -> None:
  name = res.input_path or f"array {res.index}"
  if res.page_index is not None:
    name += f" page {res.page_index}"
  print(f"{name}: {len(res.rec_texts)} lines ({sum(res.timings.values()):.2f} s)")
  for text, score in zip(res.rec_texts, res.rec_scores):
    print(f"  {score:.3f}  {text}")


REPORT = predict_files.Report(show=_show, count=lambda r: len(r.rec_texts),
                              summary=lambda n, lines: f"{n} images read ({lines} lines)")


def run(config) -> int:
  """Reads config.predict.input (image, PDF, directory or comma list), prints each image's
  or page's lines and saves `<stem>_ocr_res_img.png` / `<stem>_res.json` (a PDF page:
  `<stem>_<page>_ocr_res_img.png` / `<stem>_<page>_res.json`, as PaddleX names them) under
  config.predict.output_dir (default <output_dir>/predict), then a summary line. Exit code
  0; 1 when an input failed or none was read."""
  p = config.predict
  predict_files.check(p)
  pipe = pipeline_from_config(config)
  results = pipe.predict(predict_files.input_paths(p.input))
  return predict_files.run(results, p, predict_files.output_dir(config), REPORT)
