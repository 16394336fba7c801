"""Shared pieces of the parity tests against PaddleOCR's outputs (tests/fixtures/paddle_ref):
our eval forward's features and probabilities in Paddle's layouts, the probability check
against float16-stored references, and the replayed models cached per test module."""
from __future__ import annotations

import pathlib
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from paddle_ref import replay
from textrec.models import recognizer, registry, zoo
from textrec.runtime import settings
from textrec.weights import paddle as pw


def forward(model, variables, x: jax.Array) -> dict[str, np.ndarray]:
  """Our eval forward on x [B, H, W, 3] with plain XLA convs (one jit of the whole graph):
  backbone [B, C, 1, T] and guide [B, C, T] as Paddle lays them out, neck [B, T, C], probs."""
  with settings.conv_impl("xla"):
    out = jax.jit(lambda v, x: model.apply(v, x, train=False, return_features=True))(
        variables, x)
  res = {"backbone": np.asarray(out["backbone_feat"]).transpose(0, 3, 1, 2),
         "neck": np.asarray(out["ctc_neck"]),
         "probs": np.asarray(recognizer.probs(out))}
  if "ctc_guide_feat" in out:
    res["guide"] = np.asarray(out["ctc_guide_feat"]).transpose(0, 2, 1)
  return res


def training_shapes(model, width: int = 256, targets: int = 27) -> tuple[dict, dict]:
  """(variable shapes, output shapes) of `model` in training mode with NRTR targets and its
  features, traced only (nothing compiles): x [1, 48, width, 3], targets i32[1, targets]."""
  shapes = recognizer.variable_shapes(model)
  x = jax.ShapeDtypeStruct((1, 48, width, 3), jnp.float32)
  tgt = jax.ShapeDtypeStruct((1, targets), jnp.int32)
  out, _ = jax.eval_shape(
      lambda v, x, t: model.apply(v, x, train=True, nrtr_targets=t, return_features=True,
                                  mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}),
      shapes, x, tgt)
  return shapes, out


def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.abs(a - b).max())


def check_probs(name: str, ours: np.ndarray, ref16: np.ndarray, num_classes: int) -> float:
  """ours [B, 40, C] against the reference's stored rows and time steps (float16: rounded to
  within 4.9e-4 relative, inside rtol 1e-3); our best class must be PaddleOCR's, up to ties
  after that rounding. Returns the max |Δ|."""
  ref = ref16.astype(np.float32)
  b, t, c = ref.shape
  assert c == num_classes and ours.shape[1:] == (40, c), (ours.shape, ref.shape)
  ours = ours[:b, :t]
  dp = maxdiff(ours, ref)
  print(f"{name}: max|d| probs {dp:.2e}")
  np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-3, err_msg=name)
  assert dp <= 1e-4, dp
  picked = np.take_along_axis(ref, ours.argmax(-1)[..., None], -1)[..., 0]
  np.testing.assert_allclose(picked, ref.max(-1), rtol=1e-3, atol=0, err_msg=name)
  return dp


def deploy_form(name: str, variables: dict, m: dict, io: dict, min_fused: int
                ) -> tuple[dict, dict, float]:
  """Our deploy form (zoo.to_deploy) of training-form `variables` against PaddleOCR's export:
  the same tensor names and count as manifest `m` lists, and every stored fused tensor
  (io["deploy_reparam/..."], at least `min_fused` of them) within 1e-5.
  -> (deploy variables, their PaddleOCR-named state, worst |Δ| of the fused tensors)."""
  deploy_vars = zoo.to_deploy(name, variables)
  want = [e["name"] for e in m["deploy_params"]]
  state = pw.flax_to_paddle(deploy_vars, reference_names=want)
  assert sorted(state) == sorted(want)
  assert pw.param_count(deploy_vars, exclude="gtc") == m["info"]["n_deploy_params_excl_nrtr"]
  fused = [k for k in io if k.startswith("deploy_reparam/")]
  assert len(fused) >= min_fused, len(fused)
  worst = 0.0
  for k in fused:
    got, ref = state[k.split("/", 1)[1]], io[k]
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5, err_msg=k)
    worst = max(worst, maxdiff(got, ref))
  return deploy_vars, state, worst


def replayed_models(paddle_ref_dir: pathlib.Path) -> Callable:
  """name -> (state_dict, io, variables loaded through paddle_to_flax, LoadReport, outputs of
  the registered model's eval forward on io["x"]), each computed once."""
  cache = {}

  def get(name: str):
    if name not in cache:
      sd, io = replay(paddle_ref_dir, name)  # NRTR included: its names must map as well
      variables, report = pw.paddle_to_flax(sd, model_name=name, strict=False)
      model = registry.get_model(name)()  # the registered defaults
      x = jnp.asarray(io["x"].transpose(0, 2, 3, 1))
      cache[name] = (sd, io, variables, report, forward(model, variables, x))
    return cache[name]

  return get
