"""textrec: PaddleOCR/PaddleX text recognition in JAX/Flax."""
from __future__ import annotations


__version__ = "0.1.0"


def create_model(name: str, model_dir: str | None = None, **kwargs):
  """PaddleX-style: `create_model("PP-OCRv4_mobile_rec").predict(inputs, batch_size=8)`.

  `model_dir`: None for the official weights, else a Paddle inference dir (what PaddleX /
  PaddleOCR download and export), a textrec export, a textrec checkpoint dir, or a
  PaddleOCR `.pdparams` file.
  """
  from textrec.inference.predictor import create_model as _create

  return _create(name, model_dir=model_dir, **kwargs)


def create_pipeline(pipeline: str = "OCR", **kwargs):
  """PaddleX-style: `create_pipeline("OCR").predict("photo.jpg")` -> per-image OCRResult
  (text detection, optional text-line orientation, recognition); see
  textrec.pipelines.ocr.create_pipeline for the parameters."""
  from textrec.pipelines.ocr import create_pipeline as _create

  return _create(pipeline, **kwargs)


__all__ = ["create_model", "create_pipeline", "__version__"]
