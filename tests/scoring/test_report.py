"""The files a user reads after a run, on an intent set with string labels over several classes: the
training history and curves, the TensorBoard logs, and the evaluation report (per-class CSV, confusion
matrix and reliability charts, report.md); a confusion matrix stays readable at 77 classes."""

import csv
import json

import pytest
import torch
from helpers import FAST_TRAINING, INTENTS, run_script, write_intents


def is_png(path):
    import matplotlib.image

    image = matplotlib.image.imread(path)
    return image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.fixture(scope="module")
def intent_teacher(tmp_path_factory, sst2_slice, tiny_models):
    root = tmp_path_factory.mktemp("intents")
    data = write_intents(root / "data", sst2_slice)
    result = run_script("trainer_teacher.py", "--data_path", data, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", root, *FAST_TRAINING, "--num_train_epochs", "3")
    assert result.returncode == 0, result
    return data, root / "teacher"


def test_string_labels_many_classes_and_training_files(intent_teacher):
    from transformers import AutoConfig

    data, teacher = intent_teacher
    config = AutoConfig.from_pretrained(teacher)
    assert [config.id2label[i] for i in range(4)] == sorted(INTENTS)  # a stable, sorted order
    history = [json.loads(line) for line in (teacher / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3] and all("eval" in h for h in history)
    assert is_png(teacher / "training_curves.png")


def test_training_logs_to_tensorboard(intent_teacher):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, teacher = intent_teacher
    runs = teacher.parent / "runs" / "teacher"
    events = EventAccumulator(str(runs))
    events.Reload()
    accuracy = events.Scalars("eval/accuracy")
    history = [json.loads(line) for line in (teacher / "history.jsonl").read_text().splitlines()]
    assert [e.step for e in accuracy] == [1, 2, 3]
    assert [e.value for e in accuracy] == pytest.approx([h["eval"]["accuracy"] for h in history])
    assert "train/loss" in events.Tags()["scalars"]


def test_evaluation_report_files(intent_teacher, tiny_models, tmp_path):
    data, teacher = intent_teacher
    student_run = run_script("distilled-bert.py", "--data_path", data, "--teacher_model", teacher, "--student_model",
                             tiny_models["student_base"], "--output_dir", tmp_path, *FAST_TRAINING)
    assert student_run.returncode == 0, student_run
    report = tmp_path / "report"
    result = run_script("evaluate.py", "--model", tmp_path / "student", "--teacher", teacher, "--data_path", data,
                        "--report_dir", report, "--latency_samples", "5")
    assert result.returncode == 0, result
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["num_examples"] == 40 and metrics["label_names"] == sorted(INTENTS)
    with open(report / "per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == sorted(INTENTS)
    for row in rows:
        assert float(row["f1"]) == pytest.approx(metrics["per_class"][row["label"]]["f1-score"], abs=1e-4)
        assert int(row["support"]) == 10
    assert is_png(report / "confusion_matrix.png") and is_png(report / "reliability.png")
    text = (report / "report.md").read_text()
    assert "](confusion_matrix.png)" in text and "](reliability.png)" in text and "Student and teacher" in text


def test_confusion_matrix_is_readable_at_77_classes(tmp_path):
    from kd_bert.scoring.report import confusion_matrix_png

    names = [f"intent_with_a_long_name_{i}" for i in range(77)]
    matrix = torch.randint(0, 5, (77, 77)).tolist()
    path = tmp_path / "cm.png"
    path.write_bytes(confusion_matrix_png(matrix, names, "77 classes"))
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    assert min(height, width) > 1500  # about 25 pixels per class: every label gets its own row
