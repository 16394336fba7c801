#!/usr/bin/env bash
# The README's test command: sets up .venv with the dev extras (scripts/setup.sh) and runs
# the test suite on both cores. Tests marked `slow` (full-dataset comparisons; each has a
# sampled case in the default run) are skipped unless the caller gives its own -m:
#   bash scripts/test.sh -m slow      # only them
#   bash scripts/test.sh -m ""        # everything
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/setup.sh
marker=(-m "not slow")
for a in "$@"; do
  case "$a" in -m|-m*) marker=() ;; esac
done
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile ${marker[@]+"${marker[@]}"} "$@"
