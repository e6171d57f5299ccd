#!/usr/bin/env bash
# Install what is needed, then run the test suite (offline; docs/testing.md gives its time). The end-to-end
# runs of the benchmarks, the recipe and torchrun are marked slow and left out: `python -m pytest -m slow` runs
# them (CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest -q -m "not slow" "$@"
