#!/usr/bin/env bash
# Full-scale recipes: the whole job on a whole training set, with no model hub.
#
#   bash scripts/recipe.sh RECIPE [OUTPUT_DIR]      # default OUTPUT_DIR: ./models/recipe-RECIPE
#   bash scripts/recipe.sh --help                   # the recipes, and every variable with its default
#
# sst2: MPNet-base (109.5M) fine-tuned on all 67,349 SST-2 training sentences; MiniLM-L6 and its first
#   3 layers distilled from it, each beside its twin trained without the teacher, for 3 seeds.
# sst2-small: MiniLM-L6 as the teacher; a 3-layer student built from its layers, and its twin.
# sst2-few: few labels; the rest of the training set as unlabeled text.
#
# Running the same command again continues where the last run stopped (finished steps are skipped,
# a stopped training resumes from its last checkpoint); OUTPUT_DIR/recipe_status.txt says where it
# stands. Every setting is an environment variable (see --help), checked before the first step;
# TEACHER=FOLDER reuses a teacher trained earlier. The steps are scripts/recipe.py's.
set -euo pipefail
export RECIPE_CALLER_DIR=$PWD  # a relative OUTPUT_DIR or RECIPE_DATA is the caller's
exec "${PYTHON:-python3}" "$(dirname "$0")/recipe.py" "$@"
