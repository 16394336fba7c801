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
  textrec export            inference.yml + inference.onnx (onnxruntime or openvino,
                            textrec.export.export; backend auto: the faster, per machine)
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
from textrec.formats import inference_yml, official_files
from textrec.inference import inputs as inputs_lib
from textrec.inference import auto_backend, onnx_backend, postprocess, predict_files
from textrec.inference import preprocess, runtimes
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
    self.backend, self.precision = backend_of(probs_fn)

  @property
  def model_settings(self) -> dict[str, str]:
    """The runtime that reads: {"backend": jax | onnxruntime | openvino, "precision": f32 |
    bf16}."""
    return {"backend": self.backend, "precision": self.precision}

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
          yield TextRecResult(it.index, it.input_path, error=it.error, page_index=it.page_index,
                              model_settings=self.model_settings)
        else:
          text, score = next(texts)
          yield TextRecResult(it.index, it.input_path, text, score, input_img=it.image,
                              page_index=it.page_index, model_settings=self.model_settings)

  __call__ = predict


# ----------------------------------------------------------------------------- loading


def model_dir_kind(model_dir: str | os.PathLike | None) -> str:
  """"official" | "paddle_infer" | "exported" | "pdparams" | "orbax"; raises for anything
  else, naming what was found and what each kind needs."""
  return model_dirs.resolve(model_dir)[0]


# A representative recognizer input for backend auto's timing: f32[B, 3, 48, W] (NCHW).
AUTO_INPUT_SHAPE = (6, 3, preprocess.HEIGHT, preprocess.MIN_WIDTH)


class OnnxProbs:
  """An ONNX runtime's recognizer forward (NCHW) as a probs_fn (NHWC), with its backend
  and precision."""

  def __init__(self, forward_nchw):
    self.forward_nchw = forward_nchw
    self.backend, self.precision = forward_nchw.backend, forward_nchw.precision

  def __call__(self, x: np.ndarray) -> np.ndarray:
    return np.asarray(self.forward_nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))


def _jax_of_export(name: str, path: str, meta: dict) -> ProbsFn:
  """JAX on the weights an export was made from, when they are the official ones (an
  exported dir holds no weights JAX reads)."""
  if not meta.get("source", "").startswith("official"):
    raise UsageError(f"{path} is an exported inference dir of {meta.get('source') or 'weights'}"
                     " that JAX cannot read; run it with backend onnxruntime or openvino")
  official_files.check_shipped(name, "model_dir")
  from textrec.inference import jax_backend  # pylint: disable=g-import-not-at-top  (JAX)

  compile_cache.enable()
  return jax_backend.load(name, None)[0]


def _exported(name: str, path: str, backend: str, precision: str,
              session_config: dict[str, str] | None) -> tuple[ProbsFn, Charset]:
  """probs_fn and charset of exported dir `path` on `backend` (auto: timed, auto_backend)."""
  load = lambda b: onnx_backend.load_inference_dir(  # noqa: E731
      path, session_config=session_config, backend=b, precision=precision)
  meta_name = inference_yml.read(path).get("Global", {}).get("model_name")
  if meta_name != name:
    raise WeightsError(f"{path}: an export of {meta_name!r}, not {name!r}")
  if backend in runtimes.ONNX_RUNTIMES:
    forward, cs, meta = load(backend)
    probs = OnnxProbs(forward)
  else:
    cands = [b for b in runtimes.ONNX_RUNTIMES if precision in runtimes.SUPPORTED[b]]
    forward, cs, meta = load(cands[0])
    if backend == "jax":
      probs = _jax_of_export(name, path, meta)
    else:  # auto
      loaded = {cands[0]: OnnxProbs(forward)}
      makers = {b: (lambda b=b: loaded.get(b) or OnnxProbs(load(b)[0])) for b in cands}
      x = np.random.default_rng(0).uniform(-1, 1, AUTO_INPUT_SHAPE).astype(np.float32)
      nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
      _, probs = auto_backend.choose(meta["onnx_path"], makers, nhwc, f"{name} ({path})")
  if meta["pad_widths"] and tuple(meta["pad_widths"]) != preprocess.BUCKETS:
    raise WeightsError(f"{path}: pad_widths {list(meta['pad_widths'])} differ from this "
                       f"version's {list(preprocess.BUCKETS)}; re-export the model")
  return probs, cs


def backend_of(probs_fn) -> tuple[str, str]:
  """(backend, precision) a probs_fn runs on (JAX's FlaxForward: jax, f32)."""
  return getattr(probs_fn, "backend", "jax"), getattr(probs_fn, "precision", "f32")


def load_backend(name: str, model_dir: str | os.PathLike | None,
                 dict_path: str | None = None, prefix: str | None = None,
                 session_config: dict[str, str] | None = None, backend: str = "auto",
                 precision: str = "f32") -> tuple[ProbsFn, Charset, str]:
  """-> (probs_fn, charset, description) for the weights `model_dir` names; prefix: the model
  of a distillation .pdparams; session_config: onnxruntime's, for an exported dir.

  backend (textrec.inference.runtimes): "onnxruntime" / "openvino" run an exported dir's
  ONNX, or the official ONNX when model_dir is None; "jax" runs every other kind of weights
  (and an export of the official weights, through them); "auto": for an exported dir the
  faster of onnxruntime and openvino (timed once per machine: auto_backend; JAX stays out,
  so an export runs without it), jax for any other weights.
  precision: "f32" (default) | "bf16" (openvino). backend_of(probs_fn) says which ran.
  """
  backend = runtimes.canonical(backend)
  precision = runtimes.check_precision(backend, precision)
  kind, resolved = model_dirs.resolve(model_dir)
  if kind == "official" and backend in runtimes.ONNX_RUNTIMES:
    official_files.check_shipped(name, "model_dir")
    kind, resolved = "exported", onnx_backend.official_dir(name)
  if kind == "exported":
    probs, cs = _exported(name, resolved, backend, precision, session_config)
    return probs, cs, f"exported:{resolved}"
  if backend in runtimes.ONNX_RUNTIMES:
    raise UsageError(f"backend {backend} runs an exported inference dir or the official ONNX; "
                     f"{model_dir!r} holds {kind} weights: export them or use backend jax")
  runtimes.check_precision("jax", precision)
  from textrec.inference import jax_backend  # pylint: disable=g-import-not-at-top  (JAX)

  return jax_backend.load(name, model_dir, dict_path, prefix)


def create_model(name: str, model_dir: str | os.PathLike | None = None, batch_size: int = 8,
                 dict_path: str | None = None, rotate_tall: float = 0.0,
                 prefix: str | None = None, session_config: dict[str, str] | None = None,
                 padding: str = "bucket", backend: str = "auto",
                 precision: str = "f32") -> TextRecognizer:
  """PaddleX's `create_model`: a TextRecognizer for registered model `name`.

  model_dir (told apart by content): None for the official weights, a Paddle inference dir
  (PaddleX / PaddleOCR: inference.json or inference.pdmodel + inference.pdiparams), a textrec
  export (inference.yml + inference.onnx; onnxruntime or openvino), a textrec checkpoint / run
  dir or a PaddleOCR `.pdparams` file. dict_path: the dictionary of a model whose files carry
  none (.pdparams, PaddleOCR 2.x inference dirs; default PaddleOCR's ppocr_keys_v1).
  prefix: the model of a distillation .pdparams (default "Student"). rotate_tall: see
  `TextRecognizer`. session_config: onnxruntime session config entries, for an exported dir.
  padding: "bucket" (default) or "batch" (PaddleX's; `TextRecognizer`). Paths may start with `~`.
  backend: "auto" (default) | "jax" | "onnxruntime" ("onnx") | "openvino"; precision: "f32" |
  "bf16" (openvino): see `load_backend`. The recognizer's `backend` / `precision` say which ran.
  """
  model_dir = os.path.expanduser(model_dir) if model_dir else None
  dict_path = os.path.expanduser(dict_path) if dict_path else None
  backend = runtimes.canonical(backend)
  runtimes.check_precision(backend, precision)
  if model_dir_kind(model_dir) != "exported" and backend not in runtimes.ONNX_RUNTIMES:
    registry.check_name(name)  # one line naming what is wrong, before anything loads
    if not model_dir:
      official_files.check_shipped(name, "model_dir")
    compile_cache.enable()  # a fresh process reuses earlier runs' compiled programs
  probs_fn, cs, source = load_backend(name, model_dir, dict_path, prefix, session_config,
                                      backend, precision)
  return TextRecognizer(name, probs_fn, cs, batch_size=batch_size, source=source,
                        rotate_tall=rotate_tall, pad_batch=backend_of(probs_fn)[0] == "jax",
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
                       prefix=config.model.get("weights_prefix") or None,
                       backend=p.get("backend", "auto"), precision=p.get("precision", "f32"))
  report = predict_files.Report(
      show=lambda r: r.print(json_format=False), count=lambda r: int(not r.rec_text),
      summary=lambda n, empty: f"{n} recognised" + (
          f" ({empty} with no text read)" if empty else ""),
      keep_failed=True)
  results = model.predict(predict_files.input_paths(p.input), batch_size=int(p.batch_size))
  return predict_files.run(results, p, predict_files.output_dir(config), report)
