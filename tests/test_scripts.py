"""The three scripts run as a user runs them, on tiny local models and a slice of the real SST-2."""

import json
import shutil

import pytest
import torch
from helpers import (
    DEV_ROWS,
    FP32,
    NAMES,
    TEST_ROWS,
    distilled_student,
    independent_logits,
    independent_predictions,
    load_plain,
    read_tsv,
    run_script,
    save_hub_shaped,
)


@pytest.fixture(scope="session")
def trained_student(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """A student distilled by distilled-bert.py from trained_teacher, with FAST_TRAINING."""
    return distilled_student(tmp_path_factory.mktemp("student-run"), sst2_slice, trained_teacher, tiny_models)


def assert_hf_model_folder(path, role):
    from transformers import pipeline

    model, tokenizer = load_plain(path)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    classify = pipeline("text-classification", model=str(path))
    out = classify(["a gorgeous , witty film", "a dull , lifeless mess"])
    assert [o["label"] in NAMES for o in out] == [True, True]
    args = json.loads((path / "training_args.json").read_text())
    assert args["role"] == role and "transformers" in args["versions"] and "seed" in args["args"]
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["validation"]["num_examples"] == DEV_ROWS
    assert len(metrics["history"]) == 2
    best = max(h["eval"]["accuracy"] for h in metrics["history"])
    assert metrics["validation"]["accuracy"] == best  # the epoch saved is the best one
    assert metrics["history"][metrics["best_epoch"] - 1]["eval"]["accuracy"] == best
    assert not list(path.parent.glob(f".{path.name}.*")), "temporary save folders left behind"
    return metrics


def test_teacher_is_a_plain_hugging_face_model(trained_teacher):
    metrics = assert_hf_model_folder(trained_teacher, "teacher")
    assert metrics["num_parameters"] > 0 and metrics["train_examples"] == 320


def test_student_is_a_plain_hugging_face_model(trained_student, trained_teacher):
    metrics = assert_hf_model_folder(trained_student, "student")
    assert metrics["teacher_model"] == str(trained_teacher) and metrics["alpha"] == 0.5
    assert {"train_kd_loss", "train_ce_loss"} <= set(metrics["history"][0])
    assert metrics["num_parameters"] < metrics["teacher_num_parameters"]


@pytest.mark.precision
def test_evaluate_agrees_with_an_independent_computation(trained_student, sst2_slice, tmp_path):
    out = tmp_path / "metrics.json"
    result = run_script("evaluate.py", "--model", trained_student, "--data_path", sst2_slice, "--output", out, *FP32)
    assert result.returncode == 0, result
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    metrics = json.loads(out.read_text())
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    gold = [int(r[1]) for r in rows]
    predicted = independent_predictions(trained_student, [r[0] for r in rows])
    tp = sum(p == 1 and g == 1 for p, g in zip(predicted, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(predicted, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(predicted, gold))
    assert metrics["num_examples"] == DEV_ROWS
    assert metrics["accuracy"] == pytest.approx(sum(p == g for p, g in zip(predicted, gold)) / len(gold))
    assert metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert sum(map(sum, metrics["confusion_matrix"])) == DEV_ROWS
    assert metrics["confusion_matrix"][1][1] == tp


@pytest.mark.precision
def test_unlabeled_test_split_gives_glue_predictions(trained_student, sst2_slice, tmp_path):
    predictions = tmp_path / "SST-2.tsv"
    result = run_script("evaluate.py", "--model", trained_student, "--data_path", sst2_slice, "--split", "test",
                        "--predictions_file", predictions, *FP32)
    assert result.returncode == 0, result
    assert "no labels" in result.stdout
    lines = predictions.read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == TEST_ROWS + 1
    rows = read_tsv(sst2_slice / "test.tsv")[1:]
    assert [line.split("\t")[0] for line in lines[1:]] == [r[0] for r in rows]
    assert [int(line.split("\t")[1]) for line in lines[1:]] == \
        independent_predictions(trained_student, [r[1] for r in rows])


@pytest.mark.precision
def test_evaluate_with_teacher_compares_both_in_one_run(trained_student, trained_teacher, sst2_slice, tmp_path):
    out = tmp_path / "both.json"
    result = run_script("evaluate.py", "--model", trained_student, "--teacher", trained_teacher, "--data_path",
                        sst2_slice, "--output", out, "--latency_samples", "10", *FP32)
    assert result.returncode == 0, result
    assert "student/teacher" in result.stdout and "agreement" not in result.stderr
    metrics = json.loads(out.read_text())
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    texts, gold = [r[0] for r in rows], torch.tensor([int(r[1]) for r in rows])
    s_logits, t_logits = independent_logits(trained_student, texts), independent_logits(trained_teacher, texts)
    assert metrics["accuracy"] == pytest.approx((s_logits.argmax(-1) == gold).float().mean().item())
    assert metrics["teacher"]["accuracy"] == pytest.approx((t_logits.argmax(-1) == gold).float().mean().item())
    assert metrics["agreement"] == pytest.approx((s_logits.argmax(-1) == t_logits.argmax(-1)).float().mean().item())
    kl = torch.nn.functional.kl_div(s_logits.log_softmax(-1), t_logits.log_softmax(-1), log_target=True,
                                    reduction="batchmean")
    assert metrics["kl_teacher_to_student"] == pytest.approx(kl.item(), rel=1e-4, abs=1e-6)
    for side in (metrics, metrics["teacher"]):
        assert 0 <= side["expected_calibration_error"] <= 1
        assert side["latency_examples"] == 10 and 0 < side["latency_p50_ms"] <= side["latency_p95_ms"]
        assert side["size_on_disk_mb"] > 0 and side["examples_per_second"] > 0
    assert metrics["num_parameters"] < metrics["teacher"]["num_parameters"]


@pytest.mark.precision
@pytest.mark.parametrize("form", ["dataset_dict", "saved_split", "jsonl_file"])
def test_evaluate_reads_every_data_form(form, trained_student, sst2_slice, tmp_path):
    hub = save_hub_shaped(tmp_path / "hub", sst2_slice)
    if form == "dataset_dict":
        args = ["--data_path", hub]
    elif form == "saved_split":
        args = ["--data_path", hub / "validation"]
    else:
        rows = read_tsv(sst2_slice / "dev.tsv")[1:]
        path = tmp_path / "dev.jsonl"
        path.write_text("".join(json.dumps({"text": r[0], "label": NAMES[int(r[1])]}) + "\n" for r in rows))
        args = ["--data_path", path]  # label names, not ids, and a 'text' column: both detected
    out = tmp_path / "m.json"
    result = run_script("evaluate.py", "--model", trained_student, *args, "--output", out, *FP32)
    assert result.returncode == 0, result
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    predicted = independent_predictions(trained_student, [r[0] for r in rows])
    assert json.loads(out.read_text())["accuracy"] == pytest.approx(
        sum(p == int(r[1]) for p, r in zip(predicted, rows)) / len(rows))


def test_teacher_from_save_to_disk_takes_classlabel_names(sst2_slice, tiny_models, tmp_path):
    hub = save_hub_shaped(tmp_path / "hub", sst2_slice)  # no labels.txt: names come from ClassLabel
    result = run_script("trainer_teacher.py", "--data_path", hub, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", tmp_path / "out", "--num_train_epochs", "1", "--max_train_samples", "64")
    assert result.returncode == 0, result
    model, _ = load_plain(tmp_path / "out" / "teacher")
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_student_with_its_own_tokenizer(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result = run_script(
        "distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
        "--student_model", tiny_models["student_own_vocab"], "--output_dir", tmp_path, "--num_train_epochs", "1",
        "--max_train_samples", "64",
    )
    assert result.returncode == 0, result
    model, tokenizer = load_plain(tmp_path / "student")
    assert len(tokenizer) == 300 and model.config.vocab_size == 300  # the student's own vocabulary


def test_alpha_zero_never_loads_the_teacher(sst2_slice, trained_teacher, tiny_models, tmp_path):
    broken = tmp_path / "broken-teacher"
    shutil.copytree(trained_teacher, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    common = ["--data_path", sst2_slice, "--teacher_model", broken, "--student_model", tiny_models["student_base"],
              "--num_train_epochs", "1", "--max_train_samples", "32"]
    result = run_script("distilled-bert.py", *common, "--alpha", "0", "--output_dir", tmp_path / "plain")
    assert result.returncode == 0, result
    metrics = json.loads((tmp_path / "plain" / "student" / "metrics.json").read_text())
    assert metrics["teacher_model"] is None and set(metrics["history"][0]) >= {"train_ce_loss"}
    assert "train_kd_loss" not in metrics["history"][0]

    result = run_script("distilled-bert.py", *common, "--alpha", "0.5", "--output_dir", tmp_path / "kd")
    assert result.returncode == 2 and "could not be read" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "kd").exists() or not any((tmp_path / "kd").iterdir())


def test_the_seed_readme_line_with_its_typo(sst2_slice, trained_teacher, tiny_models, tmp_path):
    # The original README wrote --output_air for --output_dir.
    result = run_script("distilled-bert.py", "--teacher_model", trained_teacher, "--output_air", "./",
                        "--data_path", sst2_slice, "--student_model", tiny_models["student_base"],
                        "--num_train_epochs", "1", "--max_train_samples", "32", cwd=tmp_path)
    assert result.returncode == 0, result
    assert (tmp_path / "student" / "config.json").is_file()
