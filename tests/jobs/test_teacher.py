"""trainer_teacher.py as a user runs it, on tiny local models and a slice of the real SST-2: a plain
Hugging Face model folder, label names from a saved dataset's ClassLabel, sentence pairs, and a
mean-pooling head."""

import json

import pytest
import torch
from helpers import (
    FAST_TRAINING,
    FP32,
    QUICK,
    assert_hf_model_folder,
    dev_texts,
    evaluate_model,
    load_plain,
    read_tsv,
    run_script,
    save_hub_shaped,
)


def test_teacher_is_a_plain_hugging_face_model(trained_teacher):
    metrics = assert_hf_model_folder(trained_teacher, "teacher")
    assert metrics["num_parameters"] > 0 and metrics["train_examples"] == 320


def test_teacher_from_save_to_disk_takes_classlabel_names(sst2_slice, tiny_models, tmp_path):
    hub = save_hub_shaped(tmp_path / "hub", sst2_slice)  # no labels.txt: names come from ClassLabel
    result = run_script("trainer_teacher.py", "--data_path", hub, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", tmp_path / "out", "--num_train_epochs", "1", "--max_train_samples", "64")
    assert result.returncode == 0, result
    model, _ = load_plain(tmp_path / "out" / "teacher")
    assert model.config.id2label == {0: "negative", 1: "positive"}


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


def test_mean_pool_head_teacher(sst2_slice, tiny_models, tmp_path):
    from transformers import pipeline

    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path, "--head", "mean_pool", *QUICK)
    assert result.returncode == 0, result
    folder = tmp_path / "teacher"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "kd-mean-pool"
    scored = evaluate_model(folder, sst2_slice, tmp_path)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert scored["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])
    classify = pipeline("text-classification", model=str(folder), trust_remote_code=True)
    texts = dev_texts(sst2_slice)[:20]
    labels = [out["label"] for out in classify(texts)]
    model = classify.model.eval()
    with torch.no_grad():
        logits = model(**classify.tokenizer(texts, padding=True, return_tensors="pt")).logits
    assert labels == [model.config.id2label[int(i)] for i in logits.argmax(-1)]
