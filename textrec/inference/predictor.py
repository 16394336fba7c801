"""PaddleX-style inference: `create_model(name, model_dir=None).predict(inputs, batch_size=8)`.

Batch invariance: every crop is resized and right-padded to `preprocess.predict_width(img)`,
a bucket width that depends on the crop alone, so the SVTR neck's global attention sees the
same padding whatever company the crop keeps in its batch. A chunk of `batch_size` inputs is
sorted by aspect ratio (as PaddleX does), split into groups of equal bucket width, each group
run through a jitted forward with its batch dimension padded to a small fixed set of sizes
(powers of 4 up to `batch_size`), then the results are put back in input order.
Compiled programs are cached by (batch, width).

Weights (`model_dir`, told apart by content: textrec.formats.model_dir.resolve):
  None                      the official weights (textrec/weights/official.py)
  Paddle inference dir      PaddleX / PaddleOCR: inference.json or .pdmodel + .pdiparams
                            (textrec/weights/paddle_infer.py)
  textrec export            inference.yml + inference.onnx (onnxruntime, textrec.export.export)
  file *.pdparams           PaddleOCR training weights (textrec/weights/paddle.py)
  run / checkpoint dir      an Orbax checkpoint written by training (textrec/formats/checkpoint.py)
JAX inference always runs the fused (deploy) form, whatever form the weights came in.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from textrec.charset import Charset
from textrec.errors import UsageError, WeightsError
from textrec.formats import model_dir as model_dirs
from textrec.formats import official_files
from textrec.inference import inputs as inputs_lib
from textrec.inference import onnx_backend, postprocess, predict_files, preprocess
from textrec.inference.results import TextRecResult
from textrec.models import registry
from textrec.runtime import compile_cache

# How crops are padded: "bucket" (each to its own bucket width: batch-invariant, few
# compiles) or "batch" (PaddleX's: a batch of ratio-sorted crops to its widest, any width).
PADDINGS = ("bucket", "batch")

# probs_fn: normalised BGR images f32[B, 48, W, 3] (NHWC) -> probabilities np f32[B, T, C].
ProbsFn = Callable[[np.ndarray], np.ndarray]


def batch_sizes(batch_size: int) -> tuple[int, ...]:
  """Batch dims a group is padded to: powers of 4 below `batch_size`, then `batch_size`.

  A compile costs seconds on CPU and a padded row milliseconds, so few sizes win: a group
  wastes at most 3/4 of its rows, and a width compiles at most 1 + log4(batch_size) times.
  """
  sizes, b = [], 1
  while b < batch_size:
    sizes.append(b)
    b *= 4
  return tuple(sizes) + (batch_size,)


class TextRecognizer:
  """Recognizer with PaddleX's predictor interface.

  `probs_fn` maps normalised NHWC batches to CTC probabilities; `charset` decodes them.
  `rotate_tall` (0 = off, PaddleX's behaviour): a crop with height >= rotate_tall * width is
  also read turned 90 degrees each way and the most confident of the three readings is kept.
  Vertical and steeply rotated words (a tenth of ICDAR 2015's crops) cannot be read along a
  tall crop's width; PaddleOCR's OCR pipeline turns such crops (h/w >= 1.5) before
  recognition, without choosing the direction. `pad_batch`: pad each group's batch dim to
  `batch_sizes` (few jit compiles); False runs groups as they are (onnxruntime).
  `padding` (PADDINGS): "batch" gives PaddleX's texts exactly, but a crop's text then
  depends on its batch-mates (the SVTR necks attend over the padding too), and each new
  width is a new program to compile under JAX.
  """

  def __init__(self, model_name: str, probs_fn: ProbsFn, charset: Charset,
               batch_size: int = 8, source: str = "", rotate_tall: float = 0.0,
               pad_batch: bool = True, padding: str = "bucket"):
    if not rotate_tall >= 0:
      raise UsageError(f"rotate_tall must be >= 0 (0 = off); got {rotate_tall}")
    if padding not in PADDINGS:
      raise UsageError(f"padding must be one of {PADDINGS}; got {padding!r}")
    self.padding = padding
    self.model_name = model_name
    self.probs_fn = probs_fn
    self.charset = charset
    self.batch_size = int(batch_size)
    self.source = source
    self.rotate_tall = float(rotate_tall)
    self.pad_batch = bool(pad_batch)

  def __repr__(self) -> str:
    return f"TextRecognizer({self.model_name!r}, source={self.source!r})"

  def forward(self, x: np.ndarray) -> np.ndarray:
    """The raw network as the official ONNX takes it: normalised f32[B, 3, 48, W] (NCHW)
    -> probabilities np f32[B, T, C] (T = W / 8)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3:
      raise UsageError(f"forward takes NCHW f32[B, 3, {preprocess.HEIGHT}, W]; got {x.shape}")
    return self.probs_fn(x.transpose(0, 2, 3, 1))

  def recognize(self, images: Sequence[np.ndarray], batch_size: int | None = None,
                padding: str | None = None) -> list[tuple[str, float]]:
    """BGR uint8 crops -> [(text, score)] in order; tall crops (see `rotate_tall`) also read
    turned 90 degrees each way, keeping the most confident reading."""
    out = self._recognize_as_given(images, batch_size, padding)
    if self.rotate_tall > 0:
      tall = [i for i, im in enumerate(images) if im.shape[0] >= self.rotate_tall * im.shape[1]]
      for k in ((1, -1) if tall else ()):  # counter-clockwise, clockwise
        turned = [np.ascontiguousarray(np.rot90(images[i], k)) for i in tall]
        for i, res in zip(tall, self._recognize_as_given(turned, batch_size, padding)):
          if res[1] > out[i][1]:
            out[i] = res
    return out

  def _recognize_as_given(self, images: Sequence[np.ndarray], batch_size: int | None = None,
                          padding: str | None = None) -> list[tuple[str, float]]:
    """BGR uint8 crops -> [(text, score)] in order.

    Crops are sorted by aspect ratio and grouped by bucket width (padding "bucket") or in
    chunks of `batch_size` padded to the chunk's widest ("batch"); each group's batch dim is
    padded to one of `batch_sizes(max(batch_size, len(group)))` (when `pad_batch`).
    """
    bs = int(batch_size or self.batch_size)
    out: list[tuple[str, float] | None] = [None] * len(images)
    order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
    padding = padding or self.padding
    if padding not in PADDINGS:
      raise UsageError(f"padding must be one of {PADDINGS}; got {padding!r}")
    if padding == "batch":  # PaddleX's: chunks of bs, each padded to its widest crop
      groups = [(preprocess.batch_width(images[i] for i in order[s:s + bs]), order[s:s + bs])
                for s in range(0, len(order), bs)]
    else:
      by_width: dict[int, list[int]] = {}
      for i in order:
        by_width.setdefault(preprocess.predict_width(images[i]), []).append(i)
      groups = sorted(by_width.items())
    for width, idx in groups:
      sizes = batch_sizes(max(bs, len(idx)))
      pad_to = next(s for s in sizes if s >= len(idx)) if self.pad_batch else len(idx)
      x = np.zeros((pad_to, preprocess.HEIGHT, width, 3), np.float32)
      for k, i in enumerate(idx):
        x[k] = preprocess.resize_norm(images[i], width)
      probs = self.probs_fn(x)[:len(idx)]
      for i, res in zip(idx, postprocess.ctc_greedy_decode(probs, self.charset)):
        out[i] = res
    return out  # type: ignore[return-value]

  def predict(self, inputs: Any, batch_size: int | None = None) -> Iterator[TextRecResult]:
    """Streams one TextRecResult per input image, in input order.

    `inputs`: a path (image or directory, read lazily), a BGR np.ndarray [H, W(, C)] or a
    stack [N, H, W, C], or a list of these. A bad item yields a result with `.error` set;
    the rest of its batch is still recognised.
    """
    bs = int(batch_size or self.batch_size)
    for chunk in inputs_lib.chunks(inputs_lib.iter_inputs(inputs), bs):
      good = [it for it in chunk if it.error is None]
      texts = iter(self.recognize([it.image for it in good], bs) if good else [])
      for it in chunk:
        if it.error is not None:
          yield TextRecResult(it.index, it.input_path, error=it.error, page_index=it.page_index)
        else:
          text, score = next(texts)
          yield TextRecResult(it.index, it.input_path, text, score, input_img=it.image,
                              page_index=it.page_index)

  __call__ = predict


# ----------------------------------------------------------------------------- loading


def model_dir_kind(model_dir: str | os.PathLike | None) -> str:
  """"official" | "paddle_infer" | "exported" | "pdparams" | "orbax"; raises for anything
  else, naming what was found and what each kind needs."""
  return model_dirs.resolve(model_dir)[0]


def load_backend(name: str, model_dir: str | os.PathLike | None,
                 dict_path: str | None = None, prefix: str | None = None,
                 session_config: dict[str, str] | None = None
                 ) -> tuple[ProbsFn, Charset, str]:
  """-> (probs_fn, charset, description) for the weights `model_dir` names; prefix: the model
  of a distillation .pdparams; session_config: onnxruntime's, for an exported dir."""
  kind, resolved = model_dirs.resolve(model_dir)
  if kind == "exported":
    path = resolved
    forward_nchw, cs, meta = onnx_backend.load_inference_dir(path,
                                                             session_config=session_config)
    if meta["model_name"] != name:
      raise WeightsError(f"{path}: an export of {meta['model_name']!r}, not {name!r}")
    if meta["pad_widths"] and tuple(meta["pad_widths"]) != preprocess.BUCKETS:
      raise WeightsError(f"{path}: pad_widths {list(meta['pad_widths'])} differ from this "
                       f"version's {list(preprocess.BUCKETS)}; re-export the model")
    return (lambda x: np.asarray(forward_nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))),
            cs, f"exported:{path}")
  from textrec.inference import jax_backend  # pylint: disable=g-import-not-at-top  (JAX)

  return jax_backend.load(name, model_dir, dict_path, prefix)


def create_model(name: str, model_dir: str | os.PathLike | None = None, batch_size: int = 8,
                 dict_path: str | None = None, rotate_tall: float = 0.0,
                 prefix: str | None = None, session_config: dict[str, str] | None = None,
                 padding: str = "bucket") -> TextRecognizer:
  """PaddleX's `create_model`: a TextRecognizer for registered model `name`.

  model_dir (told apart by content): None for the official weights, a Paddle inference dir
  (PaddleX / PaddleOCR: inference.json or inference.pdmodel + inference.pdiparams), a textrec
  export (inference.yml + inference.onnx; onnxruntime), a textrec checkpoint / run dir or a
  PaddleOCR `.pdparams` file. dict_path: the dictionary of a model whose files carry none
  (.pdparams, PaddleOCR 2.x inference dirs; default PaddleOCR's ppocr_keys_v1).
  prefix: the model of a distillation .pdparams (default "Student"). rotate_tall: see
  `TextRecognizer`. session_config: onnxruntime session config entries, for an exported dir.
  padding: "bucket" (default) or "batch" (PaddleX's; `TextRecognizer`). Paths may start with `~`.
  """
  model_dir = os.path.expanduser(model_dir) if model_dir else None
  dict_path = os.path.expanduser(dict_path) if dict_path else None
  if model_dir_kind(model_dir) != "exported":  # (an export runs without JAX)
    registry.check_name(name)  # one line naming what is wrong, before anything loads
    if not model_dir:
      official_files.check_shipped(name, "model_dir")
    compile_cache.enable()  # a fresh process reuses earlier runs' compiled programs
  probs_fn, cs, source = load_backend(name, model_dir, dict_path, prefix, session_config)
  return TextRecognizer(name, probs_fn, cs, batch_size=batch_size, source=source,
                        rotate_tall=rotate_tall, pad_batch=not source.startswith("exported:"),
                        padding=padding)


# ----------------------------------------------------------------------------- CLI


def run(config) -> int:
  """`--config.mode=predict`: recognises config.predict.input, prints each result and saves
  images/JSON under config.predict.output_dir (default <output_dir>/predict), then a summary
  line (counts by reason). Exit code 0; 1 when an input failed or none was read (a
  directory's non-image files are skipped, not failed)."""
  p = config.predict
  predict_files.check(p)
  model = create_model(config.model.name, model_dir=p.model_dir or None,
                       batch_size=int(p.batch_size), rotate_tall=float(p.rotate_tall),
                       dict_path=config.data.dict_path or None,
                       prefix=config.model.get("weights_prefix") or None)
  report = predict_files.Report(
      show=lambda r: r.print(json_format=False), count=lambda r: int(not r.rec_text),
      summary=lambda n, empty: f"{n} recognised" + (
          f" ({empty} with no text read)" if empty else ""),
      keep_failed=True)
  results = model.predict(predict_files.input_paths(p.input), batch_size=int(p.batch_size))
  return predict_files.run(results, p, predict_files.output_dir(config), report)
