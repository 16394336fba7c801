"""textrec's step-1 gradients on PaddleOCR's trainer batch, float32 or float64, against
PaddleOCR's float32 and float64 records (../shared/fixtures/paddle_train).

  PYTHONPATH=. python experiments/paddle_trainer/f64_grads.py --dtype=f64
  PYTHONPATH=. python experiments/paddle_trainer/f64_grads.py --dtype=f32 \
      [--model=PP-OCRv4_server_rec] [--fixtures=../shared/fixtures/paddle_train]

Builds the model as tests/test_paddle_trainer.py does (train_state.build on the replayed
paddle_ref weights, dropout off, the replayed NRTR positional table), takes the gradient of
CTC + NRTR on the stored batch (BatchNorm in train mode) and prints, per parameter
[L2, sum] as the fixture computes them, the median / 99th percentile / max over parameters of
the difference relative to Paddle float64's L2 for: ours vs Paddle f64, Paddle f32 vs Paddle
f64 (the records alone) and ours vs Paddle f32. Parameters whose float64 gradient is
(nearly) zero (the fixture's null / small lists) are left out, as the test does. Also: the
loss and the global gradient norm, and one parameter's row (--param).

float64: the module is built with dtype float64 and the weights and image cast up; the loss
is textrec.training.losses' formula in float64 (those functions cast to float32), with
PaddleOCR's label-smoothing constants made in float32 and promoted, as Paddle's float64 run
did.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "configs")]

import flax  # noqa: E402  pylint: disable=g-import-not-at-top
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from fixture_files import shared_root, write_ppocr_keys  # noqa: E402
import test_paddle_trainer as tpt  # noqa: E402
from textrec.models import heads, layers, registry  # noqa: E402
from textrec.runtime import settings  # noqa: E402
from textrec.training import losses  # noqa: E402
from textrec.training import train_state as ts  # noqa: E402
from textrec.weights import paddle as pw  # noqa: E402

CONFIGS = {"PP-OCRv4_server_rec": "v4_server", "PP-OCRv4_mobile_rec": "v4_mobile",
           "ch_SVTRv2_rec": "svtrv2", "ch_RepSVTR_rec": "repsvtr"}


def multi_loss_f64(out: dict, batch: dict) -> tuple[jax.Array, dict[str, jax.Array]]:
  """textrec.training.losses.multi_loss in float64: mean CTC NLL + smoothed NRTR CE."""
  f64 = jnp.float64
  logits = out["ctc_logits"].astype(f64)
  ctc = optax.ctc_loss(logits, jnp.zeros(logits.shape[:2], f64), batch["label_ctc"],
                       batch["label_ctc_pad"].astype(f64), blank_id=0).mean()
  nl = out["nrtr_logits"].astype(f64)  # [B, L', C]
  tgt = batch["label_nrtr"][:, 1:nl.shape[1] + 1]
  n_class = nl.shape[-1]
  hot = jax.nn.one_hot(tgt, n_class, dtype=jnp.float32)
  eps = np.float32(0.1)
  soft = hot * (np.float32(1) - eps) + (1 - hot) * (eps / np.float32(n_class - 1))
  tok = -(soft.astype(f64) * jax.nn.log_softmax(nl, -1)).sum(-1)
  mask = (tgt != 0).astype(f64)
  nrtr = (tok * mask).sum() / mask.sum()
  return ctc + nrtr, {"ctc": ctc, "nrtr": nrtr, "loss": ctc + nrtr}


def step1_grads(fx: tpt.Fixture, dtype: str, conv: str, work: str
                ) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
  """-> ({paddle name: [L2, sum, max|g|]}, {loss, ctc, nrtr}, global grad norm)."""
  path = os.path.join(work, f"{fx.model}.pdparams")
  pw.save_pdparams(fx.sd, path)
  with fx.config.unlocked():
    fx.config.train.pretrained = path
    fx.config.data.dict_path = str(write_ppocr_keys(pathlib.Path(work) / "keys.txt"))
  s = ts.build(fx.config, work)
  model, variables, loss = s.model, s.variables, losses.multi_loss
  b = fx.batch()
  if dtype == "f64":
    model = registry.get_model(fx.config.model.name)(
        num_classes=s.charset.num_classes, deploy=s.deploy, dtype=jnp.float64)
    variables = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
    b["image"] = b["image"].astype(np.float64)
    loss = multi_loss_f64

  def loss_fn(params):
    out, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                         b["image"], train=True, nrtr_targets=b["label_nrtr"],
                         mutable=["batch_stats"])
    return loss(out, b)

  with (settings.conv_impl(conv), heads.nrtr_positional_table(fx.sd[tpt.PE]),
        layers.dropout_off()):
    (_, parts), g = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(variables["params"])
  flat = flax.traverse_util.flatten_dict({"params": g})
  keys = tpt.flax_keys({"params": variables["params"]}, fx.param_names)
  stats = {n: tpt.stats(tpt.to_paddle(keys[n], flat[keys[n]])) for n in fx.param_names}
  norm = float(np.sqrt(sum(v[0] ** 2 for v in stats.values())))
  return stats, {k: float(v) for k, v in parts.items()}, norm


def _row(label: str, a: np.ndarray, b: np.ndarray, ref_l2: np.ndarray) -> str:
  """median / p99 / max over parameters of |a - b| / ref_l2, for the L2 and sum columns."""
  cells = []
  for col in (0, 1):
    d = np.abs(a[:, col] - b[:, col]) / ref_l2
    cells += [np.median(d), np.percentile(d, 99), d.max()]
  return f"  {label:26s}" + "".join(f" {c:9.2e}" for c in cells)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--model", default="PP-OCRv4_server_rec", choices=sorted(CONFIGS))
  ap.add_argument("--fixtures", default=str(shared_root() / "fixtures" / "paddle_train"),
                  help="PaddleOCR trainer records (default ../shared/fixtures/paddle_train)")
  ap.add_argument("--dtype", default="f64", choices=["f32", "f64"])
  ap.add_argument("--conv", default="auto", choices=["auto", "fast", "xla"],
                  help="Conv2D lowering (textrec.runtime.settings.conv_impl); auto as training")
  ap.add_argument("--param", default="", help="parameter row to print (default: the stem's "
                  "second conv for PP-OCRv4_server_rec, else the first parameter)")
  args = ap.parse_args()
  jax.config.update("jax_enable_x64", args.dtype == "f64")

  fx = tpt.Fixture(pathlib.Path(args.fixtures), args.model, CONFIGS[args.model])
  with tempfile.TemporaryDirectory() as work:
    ours, parts, norm = step1_grads(fx, args.dtype, args.conv, work)
  r = fx.rec
  keep = [i for i, n in enumerate(fx.param_names) if n not in fx.null | fx.small]
  g32, g64 = r["grad_stats"][0][keep], r["f64/grad_stats"][0][keep]
  mine = np.stack([ours[fx.param_names[i]] for i in keep])
  ref = g64[:, 0]

  print(f"{args.model} step-1 gradients, textrec {args.dtype} (conv {args.conv}); "
        f"{len(keep)} of {len(fx.param_names)} parameters (left out, float64 gradient ~0: "
        f"{len(fx.param_names) - len(keep)})")
  print(f"  {'|d| / Paddle f64 L2':26s} {'L2: median':>9s} {'p99':>9s} {'max':>9s}"
        f" {'sum: med':>9s} {'p99':>9s} {'max':>9s}")
  print(_row("ours vs Paddle f64", mine, g64, ref))
  print(_row("Paddle f32 vs Paddle f64", g32, g64, ref))
  print(_row("ours vs Paddle f32", mine, g32, ref))
  for what, key in (("loss", "loss"), ("ctc", "ctc_loss"), ("nrtr", "nrtr_loss")):
    p64, p32 = float(r[f"f64/steps/{key}"][0]), float(r[f"steps/{key}"][0])
    print(f"  {what:5s} ours {parts[what]:.10g}  Paddle f64 {p64:.10g} (ours rel "
          f"{abs(parts[what] - p64) / p64:.1e})  Paddle f32 {p32:.10g}")
  p64, p32 = float(r["f64/steps/grad_global_norm"][0]), float(r["steps/grad_global_norm"][0])
  print(f"  |g|   ours {norm:.10g}  Paddle f64 {p64:.10g} (ours rel {abs(norm - p64) / p64:.1e})"
        f"  Paddle f32 {p32:.10g}")
  name = args.param or ("backbone.stem.1.conv.weight" if args.model == "PP-OCRv4_server_rec"
                        else fx.param_names[0])
  i = fx.param_names.index(name)
  print(f"  {name}: L2 / sum")
  for label, v in (("ours", ours[name]), ("Paddle f64", r["f64/grad_stats"][0][i]),
                   ("Paddle f32", r["grad_stats"][0][i])):
    print(f"    {label:10s} {v[0]:.8g} / {v[1]:.8g}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
