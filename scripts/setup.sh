#!/usr/bin/env bash
# Install everything the scripts and the tests need into the active Python environment.
# Safe to re-run: what is installed already is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# torch goes first and on its own: requirements.txt only asks for torch>=2.1, so an installed
# build (CPU or CUDA) is kept. TORCH_SPEC picks the build on a machine with none, e.g.
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu" bash scripts/setup.sh
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install ${TORCH_SPEC:-torch==2.13.0}
fi
"$PYTHON" -m pip install -r requirements-dev.txt
# model2vec for --student_init static, with --no-deps: its distill extra pins transformers<5.4, and what it
# and skeletoken import besides (pydantic, jinja2, joblib, protobuf, ...) comes with the requirements above.
"$PYTHON" -m pip install --no-deps model2vec==0.10.0 skeletoken==0.6.1
