#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev extras (scripts/setup.sh) and runs
# the test suite on both cores.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
