"""Data as users have it: blank lines, byte-order marks, quoted line breaks, broken rows, labels
that do not add up, and unlabeled text to distill on."""

import json
from dataclasses import replace

import pytest
import torch
from helpers import FAST_TRAINING, logged, read_tsv, run_script

from kd_bert.config import DataConfig
from kd_bert.data.checks import FEW_EXAMPLES, check_training_data
from kd_bert.data.labels import infer_label_names
from kd_bert.data.read import TextSplit, load_raw
from kd_bert.data.splits import (
    load_data,
    load_unlabeled,
    resolve_columns,
    to_text_split,
)
from kd_bert.errors import UserError

NAMES = ["negative", "positive"]


def read_split(path, policy="error", split="train", names=None, **flags):
    """The split as a training job reads it, and what was said on the way."""
    raw, columns = load_data(DataConfig(data_path=str(path), on_bad_rows=policy, validation_split=0, **flags))
    names = names or infer_label_names(raw, columns, flags.get("label_names"))
    with logged() as said:
        split = to_text_split(raw, split, columns, names, need_labels=False, required_by="",
                              labels_from="the training split")
    return split, names, raw, said


def test_blank_lines_bom_and_quoted_line_breaks_under_every_line_end(tmp_path):
    body = ['text,category', '', '"a text, with a comma",card', '', '   ', '"a text broken', 'over two lines",cash', ',,',
            'plain,card']
    for name, end in (("crlf", "\r\n"), ("lf", "\n"), ("cr", "\r")):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + end.join(body).encode() + end.encode())
        split, names, raw, said = read_split(path)
        assert list(raw.splits["train"].columns) == ["text", "category"]  # no BOM glued to "text"
        # A line break inside quotes is part of the text, as the file writes it (pandas reads it the same way).
        assert split.texts == ["a text, with a comma", f"a text broken{end}over two lines", "plain"]
        assert [names[i] for i in split.labels] == ["card", "cash", "card"]
        assert raw.dropped["train"] == 0 and not said


def test_a_bom_never_reaches_a_column_name_in_any_form(tmp_path):
    (tmp_path / "a.tsv").write_bytes("\ufeffsentence\tlabel\ngood\t1\nbad\t0\n".encode())
    (tmp_path / "b.jsonl").write_bytes('\ufeff{"sentence": "good", "label": 1}\n'.encode())
    for file in ("a.tsv", "b.jsonl"):
        raw = load_raw(str(tmp_path / file))
        assert resolve_columns(raw, "sentence", None).text == "sentence"


BROKEN = ("sentence,label\n"
          "fine one,1\n"             # line 2
          "missing its label\n"      # line 3: one field
          "too,many,fields,0\n"      # line 4
          "   ,1\n"                  # line 5: whitespace text
          "no label here,\n"         # line 6
          "sentence,label\n"         # line 7: a repeated header
          "fine two,0\n")


def test_bad_rows_stop_the_run_by_default_naming_file_lines_and_count(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(BROKEN)
    with pytest.raises(UserError) as caught:
        read_split(path)
    message = str(caught.value)
    for part in (str(path), "5 bad rows", "line 3: 1 field where the header has 2", "line 4: 4 fields",
                 "line 5: empty text", "line 6: no label", "line 7: a repeated header line",
                 "--on_bad_rows skip"):
        assert part in message, (part, message)


@pytest.mark.parametrize("policy", ["warn", "skip"])
def test_warn_and_skip_drop_the_bad_rows_and_count_them(tmp_path, policy):
    path = tmp_path / "train.csv"
    path.write_text(BROKEN)
    split, names, raw, said = read_split(path, policy)
    assert split.texts == ["fine one", "fine two"]
    assert names == ["LABEL_0", "LABEL_1"]  # no class named 'label' from the repeated header
    assert raw.dropped["train"] == 5
    assert len(said) == 1 and "dropped 5 bad rows" in said[0]
    assert ("line 7: a repeated header line" in said[0]) == (policy == "warn")  # warn lists them


def test_numeric_labels_compare_as_numbers(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,1.0\nbad,0.0\nfine,1\n")
    (tmp_path / "dev.csv").write_text("text,label\nnice,1\nawful,0\n")
    train, names, raw, _ = read_split(tmp_path)
    dev = to_text_split(raw, "validation", resolve_columns(raw, None, None), names, need_labels=True, required_by="")
    assert names == ["LABEL_0", "LABEL_1"]
    assert train.labels == [1, 0, 1] and dev.labels == [1, 0]


def test_a_validation_label_the_training_split_lacks_is_refused_by_name(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,1\nbad,0\n")
    (tmp_path / "dev.csv").write_text("text,label\nnice,1\nhm,maybe\nwell,maybe\n")
    with pytest.raises(UserError, match=r"'validation' split .* has label\(s\) 'maybe' \(2 rows\) that the training "
                                        r"split does not have"):
        read_split(tmp_path, split="validation")


def test_ids_with_label_names_get_the_same_checks():
    train = TextSplit("train", ["a", "b", "c"], [0, 1, 0])
    dev = TextSplit("validation", ["d", "e"], [2, 1])
    with pytest.raises(UserError, match=r"'validation' split has label\(s\) 'maybe' \(1 row\) that the 'train' split "
                                        r"never has"):
        check_training_data(train, dev, ["no", "yes", "maybe"])


def test_one_class_is_refused_and_rare_classes_and_leakage_are_counted():
    with pytest.raises(UserError, match=r"one class only \('yes', 3 examples\)"):
        check_training_data(TextSplit("train", ["a", "b", "c"], [1, 1, 1]), None, ["no", "yes"])
    train = TextSplit("train", [f"t{i}" for i in range(12)], [0] * 10 + [1] * 2)
    dev = TextSplit("validation", ["t0", "t11", "new"], [0, 1, 0])
    with logged() as said:
        report = check_training_data(train, dev, ["no", "yes", "rare"])
    assert report == {"rare_classes": {"yes": 2, "rare": 0}, "validation_in_train": 2}
    assert any(f"fewer than {FEW_EXAMPLES}" in line and "'yes' (2)" in line for line in said)
    assert any("2 of 3 'validation' examples also appear" in line for line in said)


def test_unlabeled_texts_from_a_text_file_or_any_data_form(tmp_path):
    (tmp_path / "more.txt").write_bytes(b"\xef\xbb\xbffirst text\r\n\r\nsecond text\r\n")
    (tmp_path / "more.csv").write_text("review,stars\nthird text,5\n,4\n")
    columns = resolve_columns(load_raw(str(tmp_path / "more.csv")), "review", None)
    assert load_unlabeled(str(tmp_path / "more.txt"), columns, "error").texts == ["first text", "second text"]
    unlabeled = load_unlabeled(str(tmp_path / "more.csv"), replace(columns, text="sentence"), "skip")
    assert unlabeled.texts == ["third text"] and unlabeled.labels is None


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
