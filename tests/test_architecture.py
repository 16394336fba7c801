"""The package's shape (README "Layout"): stages import only downward, no import circles, and
function-local imports only for optional or heavy packages.

Exported models run on onnxruntime without JAX (create_model / create_pipeline on exported
directories, serving them): the modules on that path (`JAX_FREE`) import without JAX, and they
alone may import a textrec module that needs JAX inside a function, where the JAX path
starts."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "textrec"

# Lowest first. A module may import its own stage and the stages before it.
STAGES = [
    ("core", ["textrec.errors", "textrec.files", "textrec.charset"]),
    ("formats", ["textrec.formats"]),
    ("runtime", ["textrec.runtime"]),
    ("models", ["textrec.models"]),
    ("weights", ["textrec.weights"]),
    ("inference", ["textrec.inference"]),
    ("data", ["textrec.data"]),
    ("training", ["textrec.training"]),
    ("pipelines", ["textrec.pipelines"]),
    ("export", ["textrec.export"]),
    ("serving", ["textrec.serving"]),
    ("app", ["textrec.cli", "textrec.checks", "textrec.main"]),
]
# Third-party packages that may be imported inside a function: optional extras, and the
# heavy libraries a fast command-line error must not wait for.
LAZY_OK = {"onnx", "onnxruntime", "jax2onnx", "onnx_ir", "tensorflow", "openvino", "array_record",
           "starlette", "uvicorn", "prometheus_client", "pypdfium2", "rapidocr_onnxruntime",
           "noto_cjk_sans_otc", "fontTools",
           "matplotlib", "jax", "jaxlib", "flax", "optax", "orbax", "grain", "cv2", "PIL"}
# The package's own __init__ is a lazy facade (create_model, create_pipeline).
FACADE = "textrec"
# Modules (and packages) that import without JAX, Flax, Optax, Orbax or TensorFlow.
JAX_FREE = ["textrec.errors", "textrec.files", "textrec.charset", "textrec.formats.inference_yml",
            "textrec.formats.model_dir", "textrec.formats.official_files",
            "textrec.runtime.settings", "textrec.runtime.hugepages", "textrec.runtime.xla_cpu",
            "textrec.runtime.programs", "textrec.runtime.compile_cache",
            "textrec.models.registry", "textrec.weights.onnx_import", "textrec.inference",
            "textrec.pipelines", "textrec.serving", "textrec.cli", "textrec.checks",
            "textrec.main"]


# ... except these, which the JAX-free ones import inside a function where JAX starts.
NEEDS_JAX = ["textrec.inference.jax_backend"]


def _jax_free(module: str) -> bool:
  return module not in NEEDS_JAX and (
      module == FACADE or any(module == p or module.startswith(p + ".") for p in JAX_FREE))


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for p in ROOT.rglob("*.py"):
    parts = p.relative_to(ROOT.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    out[name] = p
  return out


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
  """The textrec modules an import statement names (a package's submodule when it names
  one)."""
  if isinstance(node, ast.Import):
    names = [a.name for a in node.names]
  else:
    if node.level:
      pkg = module.split(".")
      if not MODULES[module].name == "__init__.py":
        pkg = pkg[:-1]
      pkg = pkg[:len(pkg) - node.level + 1]
      base = ".".join(pkg + ([node.module] if node.module else []))
    else:
      base = node.module or ""
    names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
  out = []
  for n in names:
    while n not in MODULES and "." in n:
      n = n.rsplit(".", 1)[0]
    if n in MODULES and n.startswith("textrec"):
      out.append(n)
  return out


def _imports() -> tuple[dict[str, set[str]], list[str]]:
  """-> (module -> textrec modules it imports anywhere, function-local imports not allowed)."""
  edges: dict[str, set[str]] = {m: set() for m in MODULES}
  bad_local = []
  for m, p in MODULES.items():
    tree = ast.parse(p.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    for n in tree.body:  # imports under `if`/`try` at module level count as top level
      if isinstance(n, (ast.If, ast.Try)):
        top |= {id(c) for c in ast.walk(n)}
    for node in ast.walk(tree):
      if not isinstance(node, (ast.Import, ast.ImportFrom)):
        continue
      targets = _target(m, node)
      edges[m].update(t for t in targets if t != m)
      if id(node) in top or m == FACADE:
        continue
      if targets:
        if not (_jax_free(m) and not any(_jax_free(t) for t in targets)):
          bad_local.append(f"{p.relative_to(ROOT.parent)}:{node.lineno} imports {targets[0]} "
                           "inside a function (only a JAX-free module may, and only a module "
                           "that needs JAX)")
      else:
        first = (node.names[0].name if isinstance(node, ast.Import)
                 else node.module or "").split(".")[0]
        if first not in LAZY_OK and first != "__future__":
          bad_local.append(f"{p.relative_to(ROOT.parent)}:{node.lineno} imports {first} "
                           "inside a function (not an optional or heavy package)")
  return edges, bad_local


def _stage(module: str) -> int:
  best = None
  for i, (_, prefixes) in enumerate(STAGES):
    for pre in prefixes:
      if module == pre or module.startswith(pre + "."):
        if best is None or len(pre) > best[1]:
          best = (i, len(pre))
  if best is None:
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES")
  return best[0]


def test_every_module_has_a_stage():
  for m in MODULES:
    if m != FACADE:
      _stage(m)


def test_imports_only_go_down_the_stages():
  edges, _ = _imports()
  up = [f"{m} ({STAGES[_stage(m)][0]}) imports {t} ({STAGES[_stage(t)][0]})"
        for m, ts in sorted(edges.items()) if m != FACADE
        for t in sorted(ts) if t != FACADE and _stage(t) > _stage(m)]
  assert not up, "imports from a lower stage to a higher one:\n" + "\n".join(up)


def test_no_import_circles():
  edges, _ = _imports()
  edges = {m: {t for t in ts if t != FACADE} for m, ts in edges.items() if m != FACADE}
  # A package's __init__ may import its own submodules (a facade) without a circle.
  cycles, state, stack = [], {}, []

  def visit(m):
    state[m] = 1
    stack.append(m)
    for t in sorted(edges.get(m, ())):
      if state.get(t) == 1:
        cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
      elif t not in state:
        visit(t)
    stack.pop()
    state[m] = 2

  for m in sorted(edges):
    if m not in state:
      visit(m)
  assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_function_local_imports_are_for_optional_or_heavy_packages_only():
  _, bad = _imports()
  assert not bad, "\n".join(bad)


def test_the_jax_free_modules_import_without_jax():
  names = [m for m in MODULES if _jax_free(m)]
  code = ("import importlib, sys\n"
          "for m in ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'tensorflow'): sys.modules[m] = None\n"
          f"for name in {names!r}: importlib.import_module(name)\n")
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True,
                     text=True, timeout=120)
  assert r.returncode == 0, r.stderr[-1500:]


def test_the_readme_lists_the_stages_in_order():
  text = (ROOT.parent / "README.md").read_text(encoding="utf-8")
  layout = text[text.index("## Layout"):]
  where = [layout.find(f"  {prefixes[0].split('.')[-1]}") for _, prefixes in STAGES]
  assert -1 not in where and where == sorted(where), \
      f"README's Layout must list {[s for s, _ in STAGES]} lowest first"


def test_the_registry_lists_every_builtin_model_where_it_is_defined():
  import importlib

  from textrec.models import registry

  made = registry._MODELS  # pylint: disable=protected-access  (what the decorators registered)
  for kind, names in registry.BUILTIN.items():
    for name, module in names.items():
      importlib.import_module(module)
      assert name in made[kind], f"{module} does not register {name}"
  registered = {n for reg in made.values() for n in reg}
  assert registered == {n for names in registry.BUILTIN.values() for n in names}
