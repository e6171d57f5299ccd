#!/usr/bin/env bash
# The main job on an embedded default, with no model hub: why distill, in about 4 minutes on 2 CPU cores.
#
# Teacher: all-MiniLM-L6-v2 (6 layers, 22.7M parameters, packaged, no hub), fine-tuned on DEMO_TEACHER_LABELS
#   SST-2 sentences: it stands in for the big classifier you already have.
# The students have 3 layers (17.4M parameters) and only DEMO_LABELS labeled sentences (scripts/few_labels.py):
#   - distilled: starts from the teacher's layers and learns from the teacher, on the labeled sentences and on
#     DEMO_UNLABELED more sentences given as plain text, which only the teacher labels (--transfer_data);
#   - twin: the first 3 layers of the pretrained MiniLM trained on the same labeled sentences alone, no teacher,
#     kept at its best of DEMO_TWIN_EPOCHS epochs.
# Then the three are scored on the SST-2 dev set and printed side by side (scripts/demo_report.py), with the
# precision and the CPU; OUT/demo.json keeps every number. Each run replaces the models of the last one.
# DEMO_* variables (below) change the sizes, the output folder and the base model.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUTPUT_DIR:-./models/demo}
TEACHER_LABELS=${DEMO_TEACHER_LABELS:-8000}
LABELS=${DEMO_LABELS:-2000}
UNLABELED=${DEMO_UNLABELED:-16000}
TWIN_EPOCHS=${DEMO_TWIN_EPOCHS:-4}
LR=${DEMO_LEARNING_RATE:-1e-4}
PACKAGED=sentence-transformers/all-MiniLM-L6-v2
BASE=${DEMO_BASE:-$PACKAGED}  # the model the teacher and the twin start from: a packaged name or a folder

# Every value is checked before anything installs or trains: a bad one is one line naming it, and exit 2.
refuse() { echo "error: $1" >&2; exit 2; }
whole() { [[ $2 =~ ^[1-9][0-9]*$ ]] || refuse "$1=$2 is not a whole number above 0; give e.g. $1=$3"; }
whole DEMO_TEACHER_LABELS "$TEACHER_LABELS" 8000
whole DEMO_LABELS "$LABELS" 2000
whole DEMO_UNLABELED "$UNLABELED" 16000
whole DEMO_TWIN_EPOCHS "$TWIN_EPOCHS" 4
[[ $LR =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] && awk -v x="$LR" 'BEGIN { exit !(x > 0) }' ||
    refuse "DEMO_LEARNING_RATE=$LR is not a number above 0; give e.g. DEMO_LEARNING_RATE=1e-4"
[ "$BASE" = "$PACKAGED" ] || [ -f "$BASE/config.json" ] ||
    refuse "DEMO_BASE=$BASE holds no model (no config.json); give a model folder, or leave DEMO_BASE unset for $PACKAGED"

[ "${SETUP:-1}" = 0 ] || bash scripts/setup.sh  # SETUP=0: the environment is ready, skip the install
[ "$BASE" != "$PACKAGED" ] || "$PYTHON" -m kd_bert models install "$BASE"
export HF_HUB_OFFLINE=1  # every model and dataset here is local: never wait on a hub

start=$SECONDS
TIMES=()
step() {
    local name=$1 title=$2; shift 2
    echo; echo "== $title"
    local t0=$SECONDS
    "$@"
    echo "-- $title: $((SECONDS - t0)) s"
    TIMES+=("$name=$((SECONDS - t0))")
}
step split "data: $LABELS labeled SST-2 training sentences for the students, $UNLABELED more as plain text" \
    "$PYTHON" scripts/few_labels.py ./data/sst2 "$OUT" --labeled "$LABELS" --unlabeled "$UNLABELED" --overwrite
step teacher "teacher: fine-tune MiniLM-L6 on $TEACHER_LABELS labeled SST-2 sentences" \
    "$PYTHON" trainer_teacher.py --model_name_or_path "$BASE" --data_path ./data/sst2 --output_dir "$OUT" \
    --max_train_samples "$TEACHER_LABELS" --num_train_epochs 1 --learning_rate "$LR" --overwrite_output_dir
step student "distilled student: 3 of the teacher's layers, taught by it on the $LABELS labeled and $UNLABELED unlabeled sentences" \
    "$PYTHON" distilled-bert.py --teacher_model "$OUT/teacher" --student_init teacher_layers --student_layers 3 \
    --data_path "$OUT/data" --transfer_data "$OUT/unlabeled.txt" --output_dir "$OUT" --num_train_epochs 1 \
    --learning_rate "$LR" --overwrite_output_dir
step twin "twin: the first 3 layers of the pretrained MiniLM-L6 on the $LABELS labeled sentences alone, no teacher" \
    "$PYTHON" distilled-bert.py --teacher_model "$OUT/teacher" --alpha 0 --student_model "$BASE" \
    --student_init first_layers --student_layers 3 --data_path "$OUT/data" --output_dir "$OUT/twin" \
    --num_train_epochs "$TWIN_EPOCHS" --learning_rate "$LR" --overwrite_output_dir
step evaluate "evaluate the distilled student and the teacher side by side, then the twin, on SST-2 dev" \
    bash -c '"$1" evaluate.py --model "$2/student" --teacher "$2/teacher" --data_path "$2/data" --output "$2/eval.json" &&
             "$1" evaluate.py --model "$2/twin/student" --data_path "$2/data" --output "$2/twin/eval.json"' \
    _ "$PYTHON" "$OUT"
"$PYTHON" scripts/demo_report.py "$OUT" --base "$BASE" --teacher_labels "$TEACHER_LABELS" --labels "$LABELS" \
    --unlabeled "$UNLABELED" --seconds "total=$((SECONDS - start))" "${TIMES[@]}"
