"""Other datasets (many classes with string labels, sentence pairs, no validation split) and the
files a user reads after a run: reports, charts, predictions for given texts, int8 models."""

import json

import pytest
import torch
from helpers import FAST_TRAINING, FP32, load_plain, read_tsv, run_script


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
