"""Other datasets (many classes with string labels, sentence pairs, no validation split) and the
files a user reads after a run: reports, charts, predictions for given texts, int8 models."""

import csv
import json

import pytest
import torch
from helpers import FAST_TRAINING, FP32, INTENTS, load_plain, read_tsv, run_script, write_intents


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


@pytest.mark.precision
@pytest.mark.parametrize("header,flags", [
    (("sentence1", "sentence2"), []),  # detected
    (("first", "second"), ["--text_column", "first", "--text_pair_column", "second"]),  # named by flags
])
def test_sentence_pairs(header, flags, sst2_slice, tiny_models, tmp_path):
    rows = read_tsv(sst2_slice / "train.tsv")[1:161]
    data = tmp_path / "pairs"
    data.mkdir()
    for name, chunk in (("train", rows[:120]), ("dev", rows[120:])):
        with open(data / f"{name}.tsv", "w", encoding="utf-8") as f:
            f.write(f"{header[0]}\t{header[1]}\tlabel\n")
            for i, (text, _) in enumerate(chunk):
                other = chunk[(i + 1) % len(chunk)][0] if i % 2 else text  # label 1: the same sentence twice
                f.write(f"{text}\t{other}\t{int(other == text)}\n")
    result = run_script("trainer_teacher.py", "--data_path", data, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", tmp_path, *FAST_TRAINING, *flags)
    assert result.returncode == 0, result
    out = tmp_path / "eval.json"
    result = run_script("evaluate.py", "--model", tmp_path / "teacher", "--data_path", data, "--output", out,
                        "--latency_samples", "0", *flags, *FP32)
    assert result.returncode == 0, result
    dev = read_tsv(data / "dev.tsv")[1:]
    model, tokenizer = load_plain(tmp_path / "teacher")
    with torch.no_grad():
        predicted = [int(model(**tokenizer(a, b, truncation=True, max_length=128, return_tensors="pt")).logits.argmax(-1))
                     for a, b, _ in dev]
    accuracy = sum(p == int(r[2]) for p, r in zip(predicted, dev)) / len(dev)
    assert json.loads(out.read_text())["accuracy"] == pytest.approx(accuracy)  # both sentences reached the model


@pytest.mark.precision
def test_top_k_predictions_for_given_texts(trained_teacher, tmp_path):
    texts = ["a gorgeous , witty film", "dull and lifeless"]
    lines = tmp_path / "inputs.txt"
    lines.write_text("an utter mess\n\n")
    out = tmp_path / "predictions.json"
    result = run_script("evaluate.py", "--model", trained_teacher, "--text", texts[0], "--text", texts[1],
                        "--input_file", lines, "--top_k", "2", "--output", out)
    assert result.returncode == 0, result
    written = json.loads(out.read_text())
    predictions = written["predictions"]
    assert [p["text"] for p in predictions] == [*texts, "an utter mess"]  # blank lines skipped
    model, tokenizer = load_plain(trained_teacher)
    # The reference in the precision the run computed in (bf16 where auto picks it), on the same padded batch.
    bf16 = written["computed_in"] == "pytorch bf16"
    assert bf16 or written["computed_in"] == "pytorch fp32"
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        batch = tokenizer([p["text"] for p in predictions], padding=True, return_tensors="pt")
        all_probs = model(**batch).logits.float().softmax(-1)
    for p, probs in zip(predictions, all_probs):
        best = int(probs.argmax())
        assert p["top_k"][0]["label"] == model.config.id2label[best]
        assert p["top_k"][0]["probability"] == pytest.approx(float(probs[best]), abs=1e-5)
        assert len(p["top_k"]) == 2 and p["top_k"][0]["probability"] >= p["top_k"][1]["probability"]
        assert p["top_k"][0]["label"] in result.stdout


def test_torch_dynamic_int8_is_gone_with_a_pointer_to_onnx_int8(trained_teacher, sst2_slice):
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--quantize",
                        "dynamic-int8")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "--quantize onnx-int8" in result.stderr, result
