"""/ocr's request and answer as PaddleX's OCR-pipeline serving declares them (pydantic v2).

PaddleX's own models (paddlex/inference/serving/schemas/ocr.py, schemas/shared/ocr.py,
infra/models.py) are plain `BaseModel`s: unknown fields are ignored, values are coerced in
pydantic's lax mode ("0.5" is a number, "true" a boolean), and every setting is optional with
None meaning "the pipeline's default". These mirror them, field for field, plus:

  textDetMaxSideLimit     the pipeline's text_det_max_side_limit (not in PaddleX 3.0's serving
                          schema, where it is ignored as unknown)
  returnWordBox           newer PaddleOCR clients send it; true is refused (not implemented)
  useTextLineOrientation  PaddleX 3.0.0b/rc's spelling of useTextlineOrientation
  inferenceParams         PaddleX 3.0.0rc's nested settings (textDet*, textRecScoreThresh) and
                          3.0.0b's maxLongSide; a top-level field wins over its nested twin
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, ValidationError

FileType = Literal[0, 1]  # 0 = PDF, 1 = image; None: inferred


class InferenceParams(BaseModel):
  """PaddleX 3.0.0rc's `inferenceParams` (and 3.0.0b's maxLongSide: the longest side the
  detector sees, the pipeline's text_det_max_side_limit)."""
  maxLongSide: Optional[Annotated[int, Field(gt=0)]] = None
  textDetLimitSideLen: Optional[int] = None
  textDetLimitType: Optional[Literal["min", "max"]] = None
  textDetThresh: Optional[float] = None
  textDetBoxThresh: Optional[float] = None
  textDetUnclipRatio: Optional[float] = None
  textRecScoreThresh: Optional[float] = None


class OCRInferRequest(BaseModel):
  """POST /ocr's body (PaddleX's schemas.ocr.InferRequest and its BaseInferRequest)."""
  file: str  # base64 of an image or PDF, or an http(s) URL
  fileType: Optional[FileType] = None
  useDocOrientationClassify: Optional[bool] = None
  useDocUnwarping: Optional[bool] = None
  useTextlineOrientation: Optional[bool] = None
  textDetLimitSideLen: Optional[int] = None
  textDetLimitType: Optional[str] = None
  textDetThresh: Optional[float] = None
  textDetBoxThresh: Optional[float] = None
  textDetUnclipRatio: Optional[float] = None
  textRecScoreThresh: Optional[float] = None
  visualize: Optional[bool] = None
  # Beyond PaddleX 3.0's schema (module doc).
  textDetMaxSideLimit: Optional[int] = None
  returnWordBox: Optional[bool] = None
  useTextLineOrientation: Optional[bool] = None
  inferenceParams: Optional[InferenceParams] = None

  def pipeline_params(self) -> dict[str, Any]:
    """The settings given (not None), in the pipeline's names (OCRPipeline.predict)."""
    nested = self.inferenceParams or InferenceParams()
    pick = lambda *vals: next((v for v in vals if v is not None), None)  # noqa: E731
    params = {
        "use_doc_orientation_classify": self.useDocOrientationClassify,
        "use_doc_unwarping": self.useDocUnwarping,
        "use_textline_orientation": pick(self.useTextlineOrientation,
                                         self.useTextLineOrientation),
        "text_det_limit_side_len": pick(self.textDetLimitSideLen, nested.textDetLimitSideLen),
        "text_det_limit_type": pick(self.textDetLimitType, nested.textDetLimitType),
        "text_det_max_side_limit": pick(self.textDetMaxSideLimit, nested.maxLongSide),
        "text_det_thresh": pick(self.textDetThresh, nested.textDetThresh),
        "text_det_box_thresh": pick(self.textDetBoxThresh, nested.textDetBoxThresh),
        "text_det_unclip_ratio": pick(self.textDetUnclipRatio, nested.textDetUnclipRatio),
        "text_rec_score_thresh": pick(self.textRecScoreThresh, nested.textRecScoreThresh),
    }
    return {k: v for k, v in params.items() if v is not None}


class OCRResult(BaseModel):
  """One page's answer. Pictures: base64 JPEG, absent (not null) when not drawn."""
  prunedResult: dict
  ocrImage: Optional[str] = None
  docPreprocessingImage: Optional[str] = None
  inputImage: Optional[str] = None


class ImageInfo(BaseModel):
  width: int
  height: int
  type: Literal["image"] = "image"


class PDFPageInfo(BaseModel):
  width: int
  height: int


class PDFInfo(BaseModel):
  numPages: int
  pages: list[PDFPageInfo]
  type: Literal["pdf"] = "pdf"


DataInfo = Annotated[Union[ImageInfo, PDFInfo], Discriminator("type")]


class OCRInferResult(BaseModel):
  """`result` of a successful /ocr answer."""
  ocrResults: list[OCRResult]
  dataInfo: DataInfo

  def jsonable(self) -> dict[str, Any]:
    """As PaddleX answers it (FastAPI's response_model_exclude_none: None fields left out)."""
    return self.model_dump(mode="json", exclude_none=True)


def error_line(e: ValidationError) -> str:
  """A validation error as one line naming each field: `fileType: Input should be 0 or 1
  (got 2)`."""
  parts = []
  for err in e.errors(include_url=False):
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    msg = err["msg"]
    if err["type"] != "missing":
      got = repr(err.get("input"))
      msg += f" (got {got[:40] + '...' if len(got) > 40 else got})"
    parts.append(f"{loc}: {msg}")
  return "; ".join(parts).replace("\n", " ")
