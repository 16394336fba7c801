"""Grain input pipelines: source -> decode -> augment (train) -> resize/normalise -> encode -> batch.

Batches are flat dicts of fixed-shape numpy arrays (no strings, so they go straight into jit):

  image        f32[B, H, W, 3]  BGR, (x/255 - 0.5)/0.5, zero-padded on the right
  label_ctc    i32[B, L]        CTC ids (blank 0), 0-padded; L = data.max_text_length
  label_ctc_pad f32[B, L]       1 = padding (optax.ctc_loss's label_paddings)
  length       i32[B]           number of characters in label_ctc
  label_nrtr   i32[B, L + 2]    <s>=2, ids + 3, </s>=3, 0-padded (PaddleOCR's label_gtc)
  valid_ratio  f32[B]           min(1, resized width / W)
  index        i32[B]           record index in the split's source (-1 = padding)
  mask         f32[B]           1 = real sample, 0 = padding (only eval pads)
  replaced     i32[B]           (train) records skipped before this slot's sample (unreadable
                                image, or augmentation made the label unusable)

Training (`train_iter`): PaddleOCR's MultiScaleDataSet + MultiScaleSampler. Each batch has one
shape from `scale_shapes` ((W, H) in SCALES) and a batch size that keeps W * H * B constant
(`batch_size` is the batch at the first scale, 320x32, like PaddleOCR's first_bs). Each sample:
decode (cv2, BGR) -> RecConAug -> RecAug -> resize_norm to the batch's (H, W) (the same
`textrec.inference.preprocess.resize_norm` as predict) -> MultiLabelEncode. A sample PaddleOCR would drop
is replaced by the next record, as MultiScaleDataSet does. Labels dropped whatever the
augmentation (empty, too long, unknown-only) are filtered out up front and counted.

Each epoch reshuffles with (seed, epoch); JAX process p of n takes every n-th sample of the
permutation. Batch k depends only on (seed, k, process): the same seed gives the same batches,
whatever the worker count, and the iterator's state (`get_state()` / `set_state()`) is a small
dict that the training loop saves next to the model checkpoint.

Evaluation (`eval_iter`): resize_norm(img, pad_width=W, height=H), no augmentation, every kept
sample exactly once; the last batch is padded (mask 0).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from typing import Any, Iterator, Sequence

import cv2
import grain
from absl import flags
import numpy as np

from textrec import charset as charset_lib
from textrec.data import augment, demo, labels
from textrec.data import source as source_lib
from textrec.data.source import DataError
from textrec.inference import preprocess

SCALES = ((320, 32), (320, 48), (320, 64))  # (W, H): PaddleOCR's MultiScaleSampler scales
DIVIDED_FACTOR = (8, 16)                     # W, H multiples (PaddleOCR's divided_factor)
MAX_RETRIES = 32
_log = logging.getLogger(__name__)
_warned: set[str] = set()  # per process: a bad record is named once, then only counted


def _warn_once(msg: str) -> None:
  """Logs `msg` ("file:line: what is wrong ...") unless its record was named already."""
  where = msg.split(": ", 1)[0]
  if where not in _warned:
    _warned.add(where)
    _log.warning("%s", msg)


def decode_image(data: bytes, where: str) -> np.ndarray:
  """Encoded bytes -> BGR uint8 [H, W, 3] (cv2.IMREAD_COLOR, as PaddleOCR's DecodeImage)."""
  if not data:
    raise DataError(f"{where}: image file is empty")
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise DataError(f"{where}: image cannot be decoded (corrupt or not an image)")
  if img.shape[0] < 1 or img.shape[1] < 1:
    raise DataError(f"{where}: image is empty ({img.shape[0]}x{img.shape[1]})")
  return img


def scale_shapes(batch_size: int, scales: Sequence[tuple[int, int]] = SCALES,
                 batch_multiple: int = 1) -> list[tuple[int, int, int]]:
  """[(W, H, B)] with W*H*B ~ constant (PaddleOCR: B = int(W0*H0*B0 / (W*H))), each B rounded
  down to a multiple of `batch_multiple` (e.g. the local device count)."""
  w0, h0 = scales[0]
  out = []
  for w, h in scales:
    w = int(w // DIVIDED_FACTOR[0] * DIVIDED_FACTOR[0])
    h = int(h // DIVIDED_FACTOR[1] * DIVIDED_FACTOR[1])
    b = max(1, int(w0 * h0 * batch_size / (w * h)))
    b = max(batch_multiple, b // batch_multiple * batch_multiple)
    out.append((w, h, b))
  return out


def count_drops(texts: Sequence[str], encoder: labels.LabelEncoder
                ) -> tuple[np.ndarray, dict[str, int]]:
  """Indices PaddleOCR's MultiLabelEncode keeps, and drop counts per reason."""
  keep, drops = [], {}
  for i, t in enumerate(texts):
    r = encoder.drop_reason(t)
    if r is None:
      keep.append(i)
    else:
      drops[r] = drops.get(r, 0) + 1
  return np.asarray(keep, np.int64), drops


def _shard() -> tuple[int, int]:
  import jax  # local: keeps the data code importable without initialising a backend
  return jax.process_index(), jax.process_count()


def _sample_rng(*key: int) -> np.random.Generator:
  return np.random.default_rng([int(k) for k in key])


@dataclasses.dataclass
class _EpochPlan:
  scale_ids: np.ndarray      # [num_batches] index into shapes
  starts: np.ndarray         # [num_batches] offset into the epoch's index list
  indices: np.ndarray        # [n_per_process] positions into `keep`


class _TrainBatch:
  """Batch number k -> one multi-scale training batch (a picklable grain map function)."""

  def __init__(self, source, keep: np.ndarray, encoder: labels.LabelEncoder,
               shapes: list[tuple[int, int, int]], seed: int, shard: tuple[int, int],
               augment_on: bool, con_image_shape: tuple[int, int],
               aug_prob: float = augment.REC_AUG_PROB, concat_prob: float = augment.CON_AUG_PROB):
    self.source, self.keep, self.encoder = source, keep, encoder
    self.aug_prob, self.concat_prob = float(aug_prob), float(concat_prob)
    self.shapes, self.seed = shapes, seed
    self.process_index, self.process_count = shard
    self.augment_on = augment_on
    self.con_image_shape = con_image_shape
    self.n_per = len(keep) // self.process_count
    if self.n_per < 1:
      raise ValueError(f"{len(keep)} usable samples cannot be shared by "
                       f"{self.process_count} processes")
    # PaddleOCR's batch list: whole cycles over the scales until the samples are covered.
    cycle = sum(b for _, _, b in shapes)
    self.num_cycles = max(1, math.ceil(self.n_per / cycle))
    self.batches_per_epoch = self.num_cycles * len(shapes)
    self._plans: dict[int, _EpochPlan] = {}
    self._lock = threading.Lock()

  def __getstate__(self):
    d = dict(self.__dict__)
    d["_plans"], d["_lock"] = {}, None
    return d

  def __setstate__(self, d):
    self.__dict__.update(d)
    self._lock = threading.Lock()

  def plan(self, epoch: int) -> _EpochPlan:
    with self._lock:
      p = self._plans.get(epoch)
    if p is not None:
      return p
    rng = _sample_rng(self.seed, epoch, 0x5EED)
    perm = rng.permutation(len(self.keep))
    mine = perm[self.process_index::self.process_count][:self.n_per]
    scale_ids = np.tile(np.arange(len(self.shapes)), self.num_cycles)
    rng.shuffle(scale_ids)
    sizes = np.asarray([self.shapes[s][2] for s in scale_ids])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    p = _EpochPlan(scale_ids, starts, mine)
    with self._lock:
      self._plans = {epoch: p}
    return p

  def _load(self, pos: int) -> tuple[np.ndarray, str, int]:
    rec = self.source[int(self.keep[pos])]
    return decode_image(rec["image"], rec["where"]), rec["text"], rec["index"]

  def _sample(self, pos: int, rng: np.random.Generator, w: int, h: int):
    img, text, index = self._load(pos)
    try:
      return self._transform(img, text, index, rng, w, h)
    except DataError:
      raise
    except Exception as e:  # a bad image must name its record, never crash anonymously
      raise DataError(f"{self.source.where(int(self.keep[pos]))}: "
                      f"augment/resize failed: {e!r}") from e

  def _transform(self, img, text, index, rng, w, h):
    if self.augment_on:
      def load_ext(r: np.random.Generator):
        for _ in range(MAX_RETRIES):
          try:
            e_img, e_text, _ = self._load(int(r.integers(len(self.keep))))
            return e_img, e_text
          except DataError as err:
            _warn_once(f"{err} (RecConAug picks another)")
        raise DataError(f"RecConAug: {MAX_RETRIES} random records in a row are unreadable")
      img, text = augment.rec_con_aug(img, text, rng, load_ext,
                                      prob=self.concat_prob, image_shape=self.con_image_shape,
                                      max_text_length=self.encoder.max_text_length)
      img = augment.rec_aug_all(img, rng, self.aug_prob)
    enc = self.encoder.encode(text)
    if enc is None:
      return None
    x = preprocess.resize_norm(img, pad_width=w, height=h)
    rw = preprocess.resized_width(img.shape[0], img.shape[1], h, max_width=w)
    enc.update(image=x, valid_ratio=np.float32(min(1.0, rw / w)), index=np.int32(index),
               mask=np.float32(1.0))
    return enc

  def __call__(self, k: int) -> dict[str, np.ndarray]:
    epoch, j = divmod(int(k), self.batches_per_epoch)
    p = self.plan(epoch)
    w, h, b = self.shapes[int(p.scale_ids[j])]
    out, replaced = [], np.zeros((b,), np.int32)
    for slot in range(b):
      pos = int(p.indices[(int(p.starts[j]) + slot) % self.n_per])
      last = ""
      for attempt in range(MAX_RETRIES):
        rng = _sample_rng(self.seed, epoch, j, slot, attempt, self.process_index)
        try:
          s = self._sample(pos, rng, w, h)
          if s is None:
            last = f"{self.source.where(int(self.keep[pos]))}: dropped by the label encoder"
        except DataError as err:
          _warn_once(f"{err} (replaced by the next record; named once, counted in the log)")
          s, last = None, str(err)
        if s is not None:
          break
        replaced[slot] += 1
        pos = (pos + 1) % len(self.keep)
      else:
        raise DataError(f"{MAX_RETRIES} records in a row were dropped or unreadable; the last: "
                        f"{last}; check the dataset (mode=check_dataset)")
      out.append(s)
    # Counted in the batch, so the training loop sees it whichever process made the batch.
    return dict(labels.stack(out), replaced=replaced)


def train_dataset(source, encoder: labels.LabelEncoder, batch_size: int, seed: int = 0,
                  multi_scale: bool = True, height: int = 48, width: int = 320,
                  augment_on: bool = True, num_epochs: int | None = None,
                  batch_multiple: int = 1, shard: tuple[int, int] | None = None,
                  aug_prob: float = augment.REC_AUG_PROB,
                  concat_prob: float = augment.CON_AUG_PROB
                  ) -> tuple[grain.MapDataset, dict[str, Any]]:
  """Training batches as a grain MapDataset (batch k = k-th element) and an info dict
  (drops per reason, shapes, batches_per_epoch).

  With `augment_on`, each RecAug operation fires with `aug_prob` and RecConAug with
  `concat_prob` (PaddleOCR's 0.4 and 0.5 by default).

  `batch_size` is this process's batch at the first scale (320x32) when multi_scale, else
  the batch at (height, width).
  """
  keep, drops = count_drops(source.texts(), encoder)
  if len(keep) == 0:
    raise ValueError(f"{source}: no usable sample (drops: {drops})")
  if multi_scale:
    shapes = scale_shapes(batch_size, SCALES, batch_multiple)
  else:
    shapes = [(width, height, batch_size)]
  fn = _TrainBatch(source, keep, encoder, shapes, seed, shard or _shard(), augment_on,
                   (height, width), aug_prob, concat_prob)
  total = fn.batches_per_epoch * (num_epochs if num_epochs else 1_000_000)
  ds = grain.MapDataset.range(total).map(fn)
  info = dict(drops=drops, kept=int(len(keep)), records=len(source), shapes=shapes,
              batches_per_epoch=fn.batches_per_epoch)
  return ds, info


def train_iter(source, encoder: labels.LabelEncoder, batch_size: int, seed: int = 0,
               num_workers: int = 0, num_threads: int = 2, **kw
               ) -> tuple[grain.DatasetIterator, dict[str, Any]]:
  """Checkpointable iterator over training batches (`it.get_state()` / `it.set_state(s)`).

  num_workers > 0 runs the per-batch work in that many worker processes (grain mp_prefetch);
  num_threads is grain's read threads per process.
  """
  ds, info = train_dataset(source, encoder, batch_size, seed=seed, **kw)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, num_threads),
                                               prefetch_buffer_size=max(2, 2 * num_threads)))
  if num_workers > 0:  # grain's workers read absl flags, unparsed outside absl.app.run
    if not flags.FLAGS.is_parsed():  # (tests, notebooks): use their defaults
      flags.FLAGS.mark_as_parsed()
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return iter(it_ds), info


class _EvalBatch:
  """Eval batch number k -> padded batch at one fixed shape."""

  def __init__(self, source, keep: np.ndarray, encoder: labels.LabelEncoder, batch_size: int,
               height: int, width: int):
    self.source, self.keep, self.encoder = source, keep, encoder
    self.batch_size, self.height, self.width = batch_size, height, width

  def _empty(self) -> dict[str, np.ndarray]:
    L = self.encoder.max_text_length
    return dict(label_ctc=np.zeros((L,), np.int32), label_ctc_pad=np.ones((L,), np.float32),
                length=np.int32(0), label_nrtr=np.zeros((self.encoder.nrtr_width,), np.int32),
                image=np.zeros((self.height, self.width, 3), np.float32),
                valid_ratio=np.float32(0.0), index=np.int32(-1), mask=np.float32(0.0))

  def __call__(self, k: int) -> dict[str, np.ndarray]:
    out = []
    for pos in range(k * self.batch_size, (k + 1) * self.batch_size):
      if pos >= len(self.keep):
        out.append(self._empty())
        continue
      rec = None
      try:
        rec = self.source[int(self.keep[pos])]
        img = decode_image(rec["image"], rec["where"])
      except DataError as err:
        _log.warning("%s (left out of the evaluation)", err)
        out.append(self._empty())
        continue
      enc = self.encoder.encode(rec["text"])
      x = preprocess.resize_norm(img, pad_width=self.width, height=self.height)
      rw = preprocess.resized_width(img.shape[0], img.shape[1], self.height,
                                    max_width=self.width)
      enc.update(image=x, valid_ratio=np.float32(min(1.0, rw / self.width)),
                 index=np.int32(rec["index"]), mask=np.float32(1.0))
      out.append(enc)
    return labels.stack(out)


def eval_dataset(source, encoder: labels.LabelEncoder, batch_size: int, height: int = 48,
                 width: int = 320, shard: tuple[int, int] | None = None
                 ) -> tuple[grain.MapDataset, dict[str, Any]]:
  """Evaluation batches (every kept record once, this process's share; padded, mask 0).

  Every process gets the same number of batches, so collective steps stay in lockstep.
  """
  keep, drops = count_drops(source.texts(), encoder)
  pi, pc = shard or _shard()
  per = math.ceil(len(keep) / pc)
  num_batches = max(1, math.ceil(per / batch_size))
  fn = _EvalBatch(source, keep[pi::pc], encoder, batch_size, height, width)
  info = dict(drops=drops, kept=int(len(keep)), records=len(source), num_batches=num_batches)
  return grain.MapDataset.range(num_batches).map(fn), info


def eval_iter(source, encoder: labels.LabelEncoder, batch_size: int, num_threads: int = 2, **kw
              ) -> tuple[Iterator[dict[str, np.ndarray]], dict[str, Any]]:
  ds, info = eval_dataset(source, encoder, batch_size, **kw)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, num_threads),
                                            prefetch_buffer_size=max(2, 2 * num_threads)))
  return iter(it), info


# ----------------------------------------------------------------------------- from a config
def dataset_dir(config) -> str:
  """config.dataset_dir, or the embedded demo dataset (generated on first use) when empty."""
  if config.dataset_dir:
    return config.dataset_dir
  return demo.demo_dataset_dir()


def multi_scale(config) -> bool:
  """config.data.multi_scale; None (the default): PaddleOCR's multi-scale for a dataset_dir,
  one scale for the small embedded demo dataset (one train-step compile, a quick main job)."""
  ms = config.data.multi_scale
  return bool(config.dataset_dir) if ms is None else bool(ms)


def load_charset(config, data_dir: str):
  """config.data.dict_path if set, else DIR/dict.txt (+ space when data.use_space_char)."""
  path = config.data.dict_path or os.path.join(data_dir, "dict.txt")
  return charset_lib.load_dict(path, config.data.use_space_char)


def train_iter_from_config(config, charset=None, batch_multiple: int = 1, num_epochs=None
                           ) -> tuple[grain.DatasetIterator, dict[str, Any]]:
  """Training iterator for `config` (global batch config.train.batch_size split over the JAX
  processes). `charset` defaults to `load_charset` (pass the pretrained model's one when
  fine-tuning). num_epochs=None: endless."""
  d = dataset_dir(config)
  charset = charset or load_charset(config, d)
  src, problems = source_lib.open_split(d, "train")
  for p in problems[:20]:
    _log.warning("%s (line skipped)", p)
  missing = [e.where for e in getattr(src, "entries", ())
             if not os.path.isfile(os.path.join(d, e.path))]
  for where in missing[:5]:
    _warn_once(f"{where}: image not found (replaced by the next record when drawn)")
  pi, pc = _shard()
  enc = labels.LabelEncoder(charset, config.data.max_text_length)
  it, info = train_iter(src, enc, max(1, config.train.batch_size // pc), seed=config.seed,
                        num_workers=config.data.num_workers, multi_scale=multi_scale(config),
                        height=config.data.height, width=config.data.width,
                        augment_on=config.data.augment, num_epochs=num_epochs,
                        batch_multiple=batch_multiple, shard=(pi, pc),
                        aug_prob=config.data.get("augment_prob", augment.REC_AUG_PROB),
                        concat_prob=config.data.get("concat_prob", augment.CON_AUG_PROB))
  info.update(skipped_lines=len(problems), missing_images=len(missing), dataset_dir=d)
  return it, info


def eval_iter_from_config(config, charset=None, split: str | None = None
                          ) -> tuple[Iterator[dict[str, np.ndarray]], dict[str, Any]]:
  """Evaluation iterator over `split` (default config.evaluate.split) of the config's dataset.
  `info["source"]` maps batch["index"] back to records (e.g. `source.texts()[i]`)."""
  d = dataset_dir(config)
  charset = charset or load_charset(config, d)
  src, problems = source_lib.open_split(d, split or config.evaluate.split)
  for p in problems[:20]:
    _log.warning("%s (line skipped)", p)
  enc = labels.LabelEncoder(charset, config.data.max_text_length)
  it, info = eval_iter(src, enc, config.evaluate.batch_size, height=config.data.height,
                       width=config.data.width)
  info.update(skipped_lines=len(problems), dataset_dir=d, source=src, encoder=enc)
  return it, info
