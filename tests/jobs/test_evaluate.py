"""evaluate.py as a user runs it: its numbers against an independent computation, GLUE predictions for an
unlabeled split, a student compared with its teacher in one run, every data form, top-k predictions for
given texts, the validation split its model's run held out, and the models, labels and export folders it
refuses."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import (
    DEV_ROWS,
    FP32,
    NAMES,
    TEST_ROWS,
    assert_clean_failure,
    independent_logits,
    independent_predictions,
    load_plain,
    one_line,
    read_tsv,
    run_script,
    save_hub_shaped,
)

from kd_bert import (
    DataConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    evaluate,
    train_teacher,
)


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


def test_evaluate_holds_out_what_the_models_run_held_out(sst2_slice, tiny_models, tmp_path):
    """A model trained with --validation_split 0.05 on data without a dev split: evaluate.py, the flag
    left out, scores the 16 examples its run held out (the training run's own validation numbers);
    given another fraction, it says loudly that some scored examples were trained on."""
    data = tmp_path / "no-dev"
    data.mkdir()
    for name in ("train.tsv", "labels.txt"):
        (data / name).write_bytes((sst2_slice / name).read_bytes())
    trained = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(data), max_length=32,
                                                                          validation_split=0.05),
                            TrainConfig(output_dir=str(tmp_path / "run"), num_train_epochs=1, batch_size=16,
                                        learning_rate=1e-3, report_to=["none"], mixed_precision="no"))
    assert trained.metrics["eval_examples"] == 16
    common = ["--model", trained.model_dir, "--data_path", data, "--max_length", "32", "--latency_samples", "0",
              "--mixed_precision", "no"]
    same = run_script("evaluate.py", *common, "--output", tmp_path / "same.json")
    assert same.returncode == 0, same
    scored = json.loads((tmp_path / "same.json").read_text())
    assert scored["num_examples"] == 16 and "warning" not in same.stdout + same.stderr
    assert scored["confusion_matrix"] == trained.validation["confusion_matrix"]
    assert "the 5% held out is the fraction" in same.stdout

    other = run_script("evaluate.py", *common, "--validation_split", "0.1", "--output", tmp_path / "other.json")
    assert other.returncode == 0, other
    assert json.loads((tmp_path / "other.json").read_text())["num_examples"] == 32
    [warning] = [line for line in (other.stdout + other.stderr).splitlines() if line.startswith("warning: ")]
    assert "--validation_split 0.1 differs from the 0.05" in one_line(warning) and "trained on" in warning


@pytest.mark.parametrize("form", ["train-only folder", "lone file", "lone file, trained on whole by an older run"])
def test_evaluate_refuses_a_validation_split_of_data_its_model_trained_on_whole(sst2_slice, tiny_models, tmp_path,
                                                                                form):
    """A lone file (reviews.tsv) is trained on as a folder with only a train file is: with
    --validation_split 0 nothing was held out, so evaluate.py has nothing to score as validation. Older
    runs trained on a lone file whole while their training_args.json recorded the default 0.1; their
    metrics.json, which counts no validation example, tells them apart."""
    if form.startswith("lone file"):
        data = tmp_path / "reviews.tsv"
        data.write_bytes((sst2_slice / "train.tsv").read_bytes())
    else:
        data = tmp_path / "no-dev"
        data.mkdir()
        for name in ("train.tsv", "labels.txt"):
            (data / name).write_bytes((sst2_slice / name).read_bytes())
    trained = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(data), max_length=32,
                                                                          validation_split=0),
                            TrainConfig(output_dir=str(tmp_path / "run"), num_train_epochs=1, batch_size=32,
                                        max_train_samples=64, report_to=["none"], mixed_precision="no"))
    if form.endswith("older run"):
        args_file = trained.model_dir / "training_args.json"
        recorded = json.loads(args_file.read_text())
        recorded["args"]["validation_split"] = 0.1
        args_file.write_text(json.dumps(recorded))
        assert json.loads((trained.model_dir / "metrics.json").read_text())["eval_examples"] == 0
    with pytest.raises(UserError, match=r"trained on all of the train split .*held out none"):
        evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                 DataConfig(data_path=str(data), max_length=32))
    # Asked for, it is carved, with the warning.
    result = evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                      DataConfig(data_path=str(data), max_length=32, validation_split=0.1))
    assert result.metrics["num_examples"] == 32


def test_label_outside_the_models_labels(trained_teacher, tmp_path):
    data = tmp_path / "three.csv"
    data.write_text("sentence,label\ngood,1\nbad,0\nmeh,2\n")
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", data)
    assert_clean_failure(result, "label(s) '2' (1 row) that the model", "negative", "positive")


def test_evaluate_refuses_a_teacher_with_another_label_order(sst2_slice, trained_teacher, tmp_path):
    import json
    import shutil

    flipped = tmp_path / "flipped-teacher"
    shutil.copytree(trained_teacher, flipped)
    config = json.loads((flipped / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}
    config["label2id"] = {"positive": 0, "negative": 1}
    (flipped / "config.json").write_text(json.dumps(config))
    result = run_script("evaluate.py", "--model", trained_teacher, "--teacher", flipped, "--data_path", sst2_slice)
    assert_clean_failure(result, "label maps differ", "{0: positive, 1: negative}", "{0: negative, 1: positive}")


def test_export_and_int8_folders_must_differ(trained_teacher, tmp_path):
    with pytest.raises(UserError, match="give each its own folder"):
        evaluate(EvalConfig(model=str(trained_teacher), export_onnx=str(tmp_path / "x"), quantize="onnx-int8",
                            save_quantized=str(tmp_path / "x")))


def test_quiet_hides_progress_never_the_result(trained_student, sst2_slice, tmp_path):
    """--quiet once printed nothing at all: the metrics and a --text prediction are what evaluate.py
    exists to print, and they stay; the progress lines go."""
    scored = run_script("evaluate.py", "--model", trained_student, "--data_path", sst2_slice, "--quiet",
                        "--latency_samples", "0", "--output", tmp_path / "m.json")
    assert scored.returncode == 0, scored
    accuracy = json.loads((tmp_path / "m.json").read_text())["accuracy"]
    assert f"accuracy   {accuracy:.4f}" in scored.stdout and "examples/s" not in scored.stdout
    said = run_script("evaluate.py", "--model", trained_student, "--text", "a gorgeous , witty film", "--quiet")
    assert said.returncode == 0 and said.stdout.splitlines()[0] == "a gorgeous , witty film", said
    assert any(label in said.stdout for label in ("negative", "positive"))
