"""Training-step throughput of a recogniser (default PP-OCRv4_mobile_rec) at 48x320 on this
machine, and step time on 1/2/4 (fake) CPU devices for the same global batch.

  python scripts/bench_train.py                       # both parts
  python scripts/bench_train.py --form=deploy --batch=16 --steps=10
  python scripts/bench_train.py --devices_only
  python scripts/bench_train.py --where --form=deploy   # where the step's time goes
  python scripts/bench_train.py --hugepages            # the CTC-only step with/without THP

Prints img/s of the full train step (forward + backward + Adam), of the loss forward alone
(where the time goes: forward vs backward+update), for PaddleOCR's guided step (NRTR + CTC)
and the CTC-only step (no NRTR, guide off: how inference weights fine-tune by default), and
for the guided step the ratio to the same step with plain `lax` convs and XLA's own gradients.
`--where` profiles two steps (jax.profiler) and sums XLA's kernel times per model part
(forward / backward of each backbone stage, neck, heads, loss, optimiser) and per kind of
operation, from the compiled HLO's op names; sums are thread time (2 threads on 2 cores).
Each measurement runs in a child process with malloc's transparent huge pages on where they
help (`textrec.runtime.hugepages`, as `python -m textrec.main` runs); `--hugepages` times the CTC-only
step with and without them and prints page faults and kernel time per step.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _part(op_name: str) -> tuple[str, str, str]:
  """An HLO op_name -> (model part, area, kind of op), e.g. ("bwd backbone/blocks5_1/dw_conv",
  "bwd backbone dw_conv", "reduce_sum")."""
  name = op_name.replace("jit(train_step)/", "")
  direction = "bwd" if "transpose(" in name else "fwd"
  path = [seg for seg in name.split("/") if not seg.startswith(("transpose(", "jvp("))]
  kind = path[-1] if path else "?"
  area = None
  if "backbone" in path:
    i = path.index("backbone")
    part = "/".join(path[i:i + 3])
    if len(path) > i + 3:  # backbone/<block>/<layer>/...: summed over blocks
      area = f"backbone {path[i + 2]}"
  elif "head" in path:
    i = path.index("head")
    part = "/".join(path[i:i + 2])
  elif any(s in name for s in ("ctc_loss", "log_softmax", "nrtr", "loss")):
    part = "loss"
  else:
    part = "optimiser/other"
  return f"{direction} {part}", f"{direction} {area or part}", kind


def where(step, state, batch, top: int = 25) -> None:
  """Profiles two steps; prints the top model parts and op kinds by summed kernel time."""
  import collections
  import glob
  import gzip
  import re
  import tempfile
  import jax

  names = {}
  for line in step.lower(state, batch).compile().as_text().splitlines():
    m = re.match(r"\s*(?:ROOT )?%(\S+) = .*?op_name=\"([^\"]*)\"", line)
    if m:
      names[m.group(1)] = m.group(2)
  with tempfile.TemporaryDirectory() as d:
    jax.profiler.start_trace(d)
    for _ in range(2):
      state, m = step(state, batch)
    jax.block_until_ready(m)
    jax.profiler.stop_trace()
    events = json.load(gzip.open(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]))
  by_area, by_part, by_kind = collections.Counter(), collections.Counter(), collections.Counter()
  for e in events["traceEvents"]:
    if e.get("ph") != "X" or e["name"] not in names:
      continue
    part, area, kind = _part(names[e["name"]])
    ms = e["dur"] / 2e3  # per step
    by_part[part] += ms
    by_area[area] += ms
    by_kind[f"{part.split()[0]} {kind}"] += ms
  total = sum(by_part.values())
  print(f"kernel time per step, summed over threads: {total:.0f} ms")
  for title, counter in (("by area", by_area), ("by model part", by_part),
                         ("by kind of op", by_kind)):
    print(f"  {title}:")
    for k, v in counter.most_common(top):
      print(f"    {v:8.1f} ms  {100 * v / total:5.1f}%  {k}")


_RUSAGE: dict[str, float] = {}  # page faults and kernel seconds per step of the last timing


def _time_steps(step, state, b, steps: int) -> tuple[float, float, object]:
  """(compile + first step seconds, seconds per step, state)."""
  import resource
  import jax
  t0 = time.time()
  state, m = step(state, b)
  jax.block_until_ready(m)
  compile_s = time.time() - t0
  r0 = resource.getrusage(resource.RUSAGE_SELF)
  t0 = time.time()
  for _ in range(steps):
    state, m = step(state, b)
  jax.block_until_ready(state)
  dt = (time.time() - t0) / steps
  r1 = resource.getrusage(resource.RUSAGE_SELF)
  _RUSAGE.update(page_faults=round((r1.ru_minflt - r0.ru_minflt) / steps),
                 kernel_s=round((r1.ru_stime - r0.ru_stime) / steps, 3))
  return compile_s, dt, state


def bench(model_name: str, form: str, batch: int, steps: int, nrtr: bool,
          profile: bool = False, reference: bool = False) -> dict:
  """One configuration's step timings; `reference` also times the same step traced with
  plain `lax.conv_general_dilated` convs and XLA's own gradients (conv_impl "xla")."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  sys.path.insert(0, REPO)
  sys.path.insert(0, os.path.join(REPO, "configs"))
  import common  # noqa: F401  pylint: disable=unused-import
  from textrec.training import losses, optim, train, train_state as ts
  from textrec.models import registry
  from textrec.models import recognizer

  cfg = common.base(model_name)
  with cfg.unlocked():
    cfg.train.nrtr_weight = 1.0 if nrtr else 0.0
  model = registry.get_model(model_name)(num_classes=6625, deploy=form == "deploy",
                                         with_nrtr=nrtr)
  if not nrtr:  # CTC-only, as fine-tuning inference weights runs (train.untrained_nrtr="drop"):
    model = recognizer.without_guide(model)  # no NRTR branch; the CTC loss trains the backbone
  L = 25
  variables = jax.jit(lambda r: recognizer.init_variables(model, r, 48, 320, text_len=L + 2))(
      jax.random.PRNGKey(0))
  tx, _ = optim.make_optimizer(cfg.optim, variables["params"], 1000, 100)
  mesh = train.make_mesh()
  state = train.replicate(ts.create(variables, tx, 0), mesh)
  rng = np.random.default_rng(0)
  n = rng.integers(3, 12, batch)
  ids = (rng.integers(1, 6625, (batch, L)) * (np.arange(L) < n[:, None])).astype(np.int32)
  nrtr_lab = np.zeros((batch, L + 2), np.int32)
  nrtr_lab[:, 0] = 2
  for b in range(batch):
    nrtr_lab[b, 1:n[b] + 1] = ids[b, :n[b]] + 3
    nrtr_lab[b, n[b] + 1] = 3
  host = dict(image=rng.uniform(-1, 1, (batch, 48, 320, 3)).astype(np.float32), label_ctc=ids,
              label_ctc_pad=(np.arange(L) >= n[:, None]).astype(np.float32),
              label_nrtr=nrtr_lab)
  b = train.shard_batch(host, mesh)
  step = train.jit_train_step(model, tx, mesh, cfg.train)

  def fwd(params, bs, batch):
    out, _ = model.apply({"params": params, "batch_stats": bs}, batch["image"], train=True,
                         nrtr_targets=batch["label_nrtr"] if nrtr else None,
                         mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(0)})
    return losses.multi_loss(out, batch, 1.0, 1.0 if nrtr else 0.0)[0]

  if profile:
    where(step, state, b)
    return {}
  fwd_j = jax.jit(fwd)
  state0 = state
  compile_s, step_s, state = _time_steps(step, state, b, steps)
  ref = dict(_RUSAGE)
  if reference:
    from textrec.models import layers
    from textrec.runtime import settings
    with settings.conv_impl("xla"):
      ref_step = train.jit_train_step(model, tx, mesh, cfg.train)
      _, ref_s, _ = _time_steps(ref_step, state0, b, steps)
    ref.update(reference_step_ms=round(1000 * ref_s, 1), speedup=round(ref_s / step_s, 2))
  jax.block_until_ready(fwd_j(state.params, state.batch_stats, b))
  t0 = time.time()
  for _ in range(steps):
    loss = fwd_j(state.params, state.batch_stats, b)
  jax.block_until_ready(loss)
  fwd_s = (time.time() - t0) / steps
  return dict(model=model_name, form=form, nrtr=nrtr, batch=batch, devices=jax.device_count(),
              compile_s=round(compile_s, 1), step_ms=round(1000 * step_s, 1),
              img_per_s=round(batch / step_s, 1), forward_ms=round(1000 * fwd_s, 1),
              backward_update_ms=round(1000 * (step_s - fwd_s), 1), **ref)


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--model", default="PP-OCRv4_mobile_rec")
  ap.add_argument("--form", default="both", choices=["train", "deploy", "both"])
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--devices_only", action="store_true")
  ap.add_argument("--throughput_only", action="store_true")
  ap.add_argument("--where", action="store_true",
                  help="profile the step (first --form, with NRTR) and print where time goes")
  ap.add_argument("--hugepages", action="store_true",
                  help="only the CTC-only deploy step, with and without THP for malloc")
  ap.add_argument("--no_reference", action="store_true",
                  help="skip the plain-lax-conv reference step (slow to compile)")
  ap.add_argument("--_child", default="", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args._child:  # one measurement in this process (XLA_FLAGS already set by the parent)
    form, nrtr, ref = args._child.split(",")
    print("RESULT " + json.dumps(bench(args.model, form, args.batch, args.steps,
                                       nrtr == "1", reference=ref == "1")), flush=True)
    return 0
  if args.where:
    bench(args.model, "train" if args.form == "both" else args.form, args.batch, 1, True,
          profile=True)
    return 0
  sys.path.insert(0, REPO)
  from textrec.runtime import hugepages
  runs = []
  if args.hugepages:
    if not hugepages.useful():
      print(f"huge pages change nothing here (THP mode {hugepages.thp_mode()!r}, "
            f"libc {' '.join(platform.libc_ver())})")
      return 0
    runs = [("deploy", 0, 1, 0, False), ("deploy", 0, 1, 0, True)]
  elif not args.devices_only:
    forms = ["train", "deploy"] if args.form == "both" else [args.form]
    runs += [(f, nrtr, 1, int(nrtr and not args.no_reference), True) for f in forms
             for nrtr in (1, 0)]
  if not args.throughput_only and not args.hugepages:
    runs += [("deploy", 1, d, 0, True) for d in (1, 2, 4)]
  base_ms = None  # the THP-off step time, for --hugepages
  for form, nrtr, dev, ref, huge in runs:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if huge and hugepages.useful():
      env = hugepages.with_hugepages(env)
    else:
      env["GLIBC_TUNABLES"] = ":".join(t for t in env.get("GLIBC_TUNABLES", "").split(":")
                                       if t and not t.startswith("glibc.malloc.hugetlb="))
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={dev}"
    out = subprocess.run([sys.executable, __file__, f"--model={args.model}",
                          f"--batch={args.batch}", f"--steps={args.steps}",
                          f"--_child={form},{nrtr},{ref}"], env=env, capture_output=True, text=True,
                         cwd=REPO)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not line:
      print(f"{form} nrtr={nrtr} devices={dev}: failed\n{out.stderr[-2000:]}")
      continue
    r = json.loads(line[0][7:])
    what = "NRTR + CTC (guided)" if r["nrtr"] else "CTC-only (guide off)"
    thp = "THP on " if huge and hugepages.useful() else "THP off"
    print(f"{r['form']:6s} {what} devices={r['devices']} batch={r['batch']} {thp}: "
          f"{r['img_per_s']:6.1f} img/s  step {r['step_ms']:7.1f} ms  (forward "
          f"{r['forward_ms']:.1f} ms, backward+update {r['backward_update_ms']:.1f} ms; "
          f"{r['page_faults']} page faults, {r['kernel_s']} s kernel time per step; "
          f"compile {r['compile_s']} s)", flush=True)
    if args.hugepages and huge and base_ms:
      print(f"       THP on / off: {base_ms / r['step_ms']:.2f}x img/s")
    base_ms = r["step_ms"]
    if "speedup" in r:
      print(f"       same step with plain lax convs and XLA's gradients (same process): "
            f"{r['reference_step_ms']:.1f} ms; ours is {r['speedup']:.2f}x faster", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
