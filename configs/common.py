"""Shared config sections. Each model's config file calls `base(model_name, **overrides)`.

Every model file runs the same way (README "Workflows"):
  python -m textrec.main --config=configs/<model>.py                       # train
  python -m textrec.main --config=configs/<model>.py --config.mode=predict \
      --config.predict.input=PATH [--config.predict.model_dir=WEIGHTS]

Sections: model, data, train, optim, evaluate, predict, check_dataset, export, serve,
runtime.
The config is locked, so `--config.trian.steps=1` is an error, not a silent no-op.
"""
from __future__ import annotations

import ml_collections as mlc

from textrec.runtime import settings as runtime_settings


def model_section(name: str) -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      name=name,            # registry name (textrec/models/registry.py)
      deploy=False,         # fused (re-parameterised) form
      dtype="float32",      # compute dtype: float32 | bfloat16 (params stay float32)
      # A PaddleOCR distillation .pdparams holds several models (Student.*, Teacher.*):
      # which one to load ("" = Student).
      weights_prefix="",
  ))


def data_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      dict_path="",          # "" = the dataset's dict.txt, else the pretrained dictionary
      use_space_char=True,
      max_text_length=25,
      height=48,
      width=320,             # training/eval pad width
      # PaddleOCR's MultiScaleSampler (320x32, 320x48, 320x64: a train-step compile each).
      # None = True for a dataset_dir, False (320x48 alone) for the embedded demo dataset.
      multi_scale=mlc.config_dict.placeholder(bool),
      num_workers=2,
      augment=True,
      augment_prob=0.4,      # RecAug: probability of each operation (TIA, crop, blur, ...)
      concat_prob=0.5,       # RecConAug: probability of appending other samples
  ))


def train_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      # "official" | "" (from scratch) | textrec checkpoint dir | Paddle inference dir |
      # PaddleOCR .pdparams (or its path without the extension)
      pretrained="official",
      resume=False,
      epochs=1,
      steps=0,               # > 0 overrides epochs
      batch_size=16,         # global batch (per device = batch_size / devices)
      log_every=10,
      eval_every=0,          # 0 = at the end of each epoch
      save_every=100,
      keep_last=3,
      ema_decay=0.0,         # 0 = no EMA
      max_nonfinite=5,       # stop after this many non-finite losses in a row
      ctc_weight=1.0,
      nrtr_weight=1.0,
      # Backbone frozen for this many steps; -1 = auto: one epoch when the NRTR branch starts
      # untrained (e.g. from the official inference weights), else 0. The SVTR neck's
      # use_guide stops CTC gradients, so the backbone learns only through the NRTR branch.
      freeze_backbone_steps=-1,
      # The SVTR neck's use_guide (PaddleOCR's default, True) stops the CTC gradient at the
      # neck's input. False lets the CTC loss train the backbone too: the better choice when
      # fine-tuning from inference weights, which have no trained NRTR branch to guide it.
      use_guide=True,
      # When the pretrained weights have no NRTR branch (the official inference weights):
      # "drop" fine-tunes CTC-only (no NRTR loss, use_guide off so the CTC loss trains the
      # backbone; the better recipe in experiments/ic15_finetune), "train" keeps PaddleOCR's
      # guided recipe with a fresh NRTR branch (see freeze_backbone_steps).
      untrained_nrtr="drop",
      # True: BatchNorms keep normalising with their (pretrained) running statistics during
      # training and are not updated (their scale/bias still learn), a usual choice when
      # fine-tuning with small batches.
      freeze_bn=False,
      # False: Dropout and DropPath are off in training (a deterministic step, e.g. to compare
      # with PaddleOCR's trainer).
      dropout=True,
  ))


def optim_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      name="adam",           # adam (+ L2) | adamw (decay excludes norms/biases)
      lr=5e-4,
      warmup_epochs=0.2,
      schedule="cosine",
      beta1=0.9,
      beta2=0.999,
      weight_decay=3e-5,     # L2 for adam, decoupled decay for adamw
      clip_norm=10.0,
  ))


def paddle_recipe(name: str, lr: float, weight_decay: float) -> dict:
  """`optim` values of a PaddleOCR recognition recipe (its yml's Optimizer section): Adam (+
  coupled L2 `weight_decay`) or AdamW (decoupled `weight_decay`), beta1 0.9, beta2 0.999,
  `Cosine` at `lr` with a 5-epoch linear warm-up from 0, no gradient clipping.
  tests/test_paddle_trainer.py checks the steps it gives against PaddleOCR's trainer."""
  return dict(name=name, lr=lr, weight_decay=weight_decay, beta1=0.9, beta2=0.999,
              schedule="cosine", warmup_epochs=5.0, clip_norm=0.0)


def evaluate_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      weight_path="",        # "" = official / pretrained weights
      batch_size=32,
      is_filter=False,       # keep lowercase [0-9a-z] only, as RecMetric(is_filter=True)
      split="val",
      rotate_tall=0.0,       # as predict.rotate_tall (0 = PaddleX's); also the train-time eval
  ))


def predict_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      input="",              # an image, a directory or a comma list (a missing one fails alone)
      model_dir="",
      output_dir="",         # images / JSON; "" = <output_dir>/predict
      batch_size=6,
      # 0 = off. r > 0: crops with height >= r * width are also read turned 90 degrees each
      # way, keeping the most confident reading (vertical / steeply rotated words), e.g. 1.2.
      rotate_tall=0.0,
      save_img=True,
      save_json=True,
      # auto (an exported dir: the fastest of onnxruntime / openvino [/ jax for an export of
      # the official weights], timed once per machine; other weights: jax) | jax |
      # onnxruntime (= onnx) | openvino. The OCR pipeline (configs/ocr.py) uses it for every model.
      backend="auto",
      precision="f32",       # f32 | bf16 (openvino)
  ))


def check_dataset_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      num_samples=10,        # sample pictures written
      split=mlc.ConfigDict(dict(enable=False, train_percent=80, val_percent=20)),
  ))


def export_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      weight_path="",
      format="onnx",         # onnx | saved_model | all
      opset=17,
  ))


def serve_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      model_dir="",            # "" = official weights; else as predict.model_dir
      backend="auto",          # as predict.backend (auto | jax | onnxruntime (= onnx) | openvino)
      precision="f32",         # f32 | bf16 (openvino)
      host="127.0.0.1",
      port=8080,               # 0 = any free port (printed at start)
      max_batch=32,            # images per forward
      max_delay_ms=5.0,        # how long a batch waits for company after its first image
      max_queue=256,           # images waiting; beyond it requests get 503 + Retry-After
      max_image_pixels=16_000_000,  # width x height from the header, checked before decoding
      max_pdf_pages=10,        # a PDF with more pages gets 413 (PaddleX serving's
                               # max_num_input_imgs); 0 = any number
      max_pdf_page_pixels=16_000_000,  # a page's pixels at 144 dpi, from its size in points,
                                       # checked before rendering; larger gets 413
      max_body_bytes=8_000_000,     # larger request bodies get 413
      timeout_s=30.0,          # per request; 504 past it
      access_log=False,        # uvicorn's per-request log lines
      visualize=True,          # /ocr pictures (ocrImage, ...) when a request's visualize is null
      # /ocr `file` URLs are fetched only from these hosts ("host" or "host:port", comma
      # separated); "" = none (a URL is answered 403)
      allowed_url_hosts="",
      url_timeout_s=5.0,       # fetching a `file` URL (size limit: max_body_bytes)
      # processes, each with its own model, on one port; each pinned to cores / workers CPUs
      # (textrec/serving/workers.py). /metrics sums them all.
      workers=1,
      # glibc malloc arenas in the server's processes (textrec/runtime/malloc.py): without a
      # cap each thread frees into its own arena and RSS creeps up; 0 = glibc's default
      malloc_arena_max=2,
      malloc_trim_s=5.0,       # hand freed heap pages back to the kernel this often; 0 = never
  ))


def runtime_section() -> mlc.ConfigDict:
  """How programs run (textrec/runtime/settings.py); the defaults follow the environment
  variables TEXTREC_PROGRAM_CACHE, TEXTREC_XLA_CPU_LIBS, TEXTREC_NATIVE_KERNELS and
  TEXTREC_HUGEPAGES where they are set."""
  s = runtime_settings.from_env()
  return mlc.ConfigDict(dict(
      program_cache=s.program_cache,    # compiled inference programs kept on disk
      compile_cache=s.compile_cache,    # JAX's persistent compile cache
      xla_cpu_libs=s.xla_cpu_libs,      # auto (timed once per machine) | default | ynn_off
      native_kernels=s.native_kernels,  # the C++ depthwise conv for XLA:CPU inference
      hugepages=s.hugepages,            # re-execute with transparent huge pages (Linux)
  ))


def ocr_section() -> mlc.ConfigDict:
  """The General OCR pipeline (configs/ocr.py): PaddleX's names. ocr_version (PaddleOCR 3's:
  PP-OCRv4 | PP-OCRv5 | PP-OCRv6) picks the models and defaults (textrec/pipelines/
  ocr_versions.py); a model name left "" and a setting left None take the version's. The
  recognizer is config.model.name ("" here too: the version's) with weights from
  config.predict.model_dir."""
  ph = mlc.config_dict.placeholder
  return mlc.ConfigDict(dict(
      pipeline="OCR",
      ocr_version="PP-OCRv5",
      det_model="",            # "" = the version's
      det_model_dir="",        # "" = official weights; else a Paddle inference directory
      cls_model="",            # text-line orientation; "" = the version's
      cls_model_dir="",        # as det_model_dir
      doc_orientation_model="PP-LCNet_x1_0_doc_ori",
      doc_orientation_model_dir="",      # as det_model_dir
      doc_unwarping_model_dir="",        # UVDoc: not implemented yet
      use_doc_orientation_classify=True,  # turn the whole image upright first
      use_doc_unwarping=False,           # PaddleX's True needs UVDoc (unreachable weights)
      use_textline_orientation=True,
      textline_orientation_thresh=ph(float),  # turn a line only above this "180" probability
      text_det_limit_side_len=ph(int),
      text_det_limit_type=ph(str),       # max | min | resize_long
      text_det_max_side_limit=ph(int),
      text_det_thresh=ph(float),
      text_det_box_thresh=ph(float),
      text_det_unclip_ratio=ph(float),
      text_rec_score_thresh=0.0,
      text_rec_padding="batch",  # PaddleX's (exact texts) | "bucket" (fewer compiles)
  ))


def ppocrv6(size: str, lr: float) -> mlc.ConfigDict:
  """PP-OCRv6_<size>_rec with PaddleOCR's configs/rec/PP-OCRv6/PP-OCRv6_<size>_rec.yml recipe:
  Adam (beta1 0.9, beta2 0.999) with L2 3e-5 (1e-5 on the CTC fc), cosine schedule at `lr`
  (PaddleOCR: multi-GPU batches, warm-up 5 of 100 epochs), RecAug + RecConAug, multi-scale
  heights 32/48/64. textrec imports no official v6 weights yet: it trains from scratch unless
  --config.train.pretrained names PaddleOCR's weights (a .pdparams, with its dictionary as
  --config.data.dict_path)."""
  c = base(f"PP-OCRv6_{size}_rec", optim=dict(name="adam", lr=lr, weight_decay=3e-5),
           train=dict(pretrained=""))
  c.lock()
  return c


def base(model_name: str, **overrides: dict) -> mlc.ConfigDict:
  """The whole config of `model_name`; `overrides`: {section: {key: value}} a model file
  changes, e.g. `base("ch_SVTRv2_rec", optim=dict(name="adamw", lr=1e-3))`."""
  c = mlc.ConfigDict()
  c.mode = "train"           # train | evaluate | predict | check_dataset | export | serve
  c.seed = 0
  c.output_dir = "output"
  c.dataset_dir = ""         # "" = the embedded demo dataset (generated on first use)
  c.model = model_section(model_name)
  c.data = data_section()
  c.train = train_section()
  c.optim = optim_section()
  c.evaluate = evaluate_section()
  c.predict = predict_section()
  c.check_dataset = check_dataset_section()
  c.export = export_section()
  c.serve = serve_section()
  c.runtime = runtime_section()
  for section, values in overrides.items():
    c[section].update(values)
  return c
