"""Data as users have it: blank lines, byte-order marks, quoted line breaks, broken rows, labels
that do not add up, and unlabeled text to distill on."""

import json

import pytest
import torch
from helpers import FAST_TRAINING, read_tsv, run_script

# ---------------------------------------------------------------- end to end


def messy_copy(sst2_slice, folder):
    """The slice's train split as a CSV with CRLF line ends, a BOM, blank lines, a quoted line break,
    two broken rows and a repeated header; its dev split as it is."""
    rows = read_tsv(sst2_slice / "train.tsv")[1:]
    lines = ["sentence,label"]
    for i, (text, label) in enumerate(rows):
        lines.append('"' + text.replace('"', '""') + '",' + label)
        if i == 10:
            lines += ["", '"a sentence broken', 'over two lines",1']
        if i == 20:
            lines += ["a row that lost its label", "sentence,label", ",0"]
    folder.mkdir()
    (folder / "train.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    (folder / "dev.tsv").write_text((sst2_slice / "dev.tsv").read_text())
    (folder / "labels.txt").write_text((sst2_slice / "labels.txt").read_text())
    return len(rows) + 1, 3  # rows kept, rows dropped


@pytest.mark.precision
def test_messy_file_distills_with_unlabeled_transfer_data(sst2_slice, trained_teacher, tiny_models, tmp_path):
    data = tmp_path / "messy"
    kept, dropped = messy_copy(sst2_slice, data)
    unlabeled = [r[1] for r in read_tsv(sst2_slice / "test.tsv")[1:]]  # SST-2's unlabeled test sentences
    (tmp_path / "unlabeled.txt").write_text("\n".join(unlabeled) + "\n")
    # In full precision: the cached logits are checked against plain transformers' fp32 ones.
    args = ["--data_path", data, "--teacher_model", trained_teacher, "--student_model", tiny_models["student_base"],
            "--transfer_data", tmp_path / "unlabeled.txt", *FAST_TRAINING, "--num_train_epochs", "1",
            "--mixed_precision", "no"]

    refused = run_script("distilled-bert.py", *args, "--output_dir", tmp_path / "refused")
    assert refused.returncode == 2 and "3 bad rows" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "refused").exists()

    out = tmp_path / "out"
    result = run_script("distilled-bert.py", *args, "--on_bad_rows", "skip", "--output_dir", out)
    assert result.returncode == 0, result
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["data"]["dropped_rows"] == {"train": dropped, "validation": 0}
    assert metrics["train_examples"] == kept + len(unlabeled) and metrics["transfer_examples"] == len(unlabeled)
    # The teacher labeled the unlabeled texts once, into the cache, exactly as it labels training sentences.
    (cached,) = (tmp_path / "kd-bert-cache" / "teacher_logits").glob("*.pt")
    logits = torch.load(cached, weights_only=True)["logits"]
    assert logits.shape == (kept + len(unlabeled), 2)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    teacher = AutoModelForSequenceClassification.from_pretrained(trained_teacher).eval()
    tokens = AutoTokenizer.from_pretrained(trained_teacher)(unlabeled[:8], truncation=True, max_length=64,
                                                            padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = teacher(**tokens).logits
    assert torch.allclose(logits[kept:kept + 8], expected, atol=1e-4)


def test_pure_distillation_on_unlabeled_text_alone(sst2_slice, trained_teacher, tiny_models, tmp_path):
    data = tmp_path / "dev-only"
    data.mkdir()
    (data / "dev.tsv").write_text((sst2_slice / "dev.tsv").read_text())
    (data / "labels.txt").write_text((sst2_slice / "labels.txt").read_text())
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    base = ["--data_path", data, "--teacher_model", trained_teacher, "--student_model", tiny_models["student_base"],
            "--transfer_data", tmp_path / "texts.txt", *FAST_TRAINING, "--num_train_epochs", "1"]
    needs_labels = run_script("distilled-bert.py", *base, "--output_dir", tmp_path / "mixed")
    assert needs_labels.returncode == 2 and "no 'train' split" in needs_labels.stderr
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", *base, "--alpha", "1", "--output_dir", out)
    assert result.returncode == 0, result
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["train_examples"] == len(texts) and metrics["eval_examples"] == len(read_tsv(data / "dev.tsv")) - 1
    assert 0 <= metrics["validation"]["accuracy"] <= 1


def test_a_teacher_with_another_number_of_labels_is_refused(trained_teacher, tiny_models, tmp_path):
    (tmp_path / "three.csv").write_text("sentence,label\n" + "".join(f"text {i},{i % 3}\n" for i in range(30)))
    result = run_script("distilled-bert.py", "--data_path", tmp_path / "three.csv", "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path / "out")
    assert result.returncode == 2 and "has 2 labels" in result.stderr and "the data has 3" in result.stderr, result
    assert not (tmp_path / "out").exists()
