"""Faults in the files users bring, each answered by one line (exit 2, nothing written) or, for a row,
by --on_bad_rows: a nan score, a column named twice, a stray quote, a huge field, a broken JSONL line,
text that is not UTF-8, a wrong --transfer_data; and evaluate.py holding out what its model's run held
out. Messages that list values stay one readable line."""

import csv
import json
import re

import pytest
from helpers import FAST_TRAINING, assert_clean_failure, logged, run_script

import kd_bert.data.read
import kd_bert.jobs.distill
from kd_bert import (
    DataConfig,
    DistillConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    distill,
    evaluate,
    train_teacher,
)
from kd_bert.data.checks import check_training_data
from kd_bert.data.labels import (
    check_label_names,
    describe_labels,
    encode_labels,
    has_scores,
    infer_label_names,
)
from kd_bert.data.read import Columns, TextSplit, load_raw
from kd_bert.data.splits import (
    load_data,
    load_unlabeled,
    resolve_columns,
    to_text_split,
)
from kd_bert.task import REGRESSION_LABEL

LONGEST_LINE = 300


def read_train(path, policy="error", **flags):
    """The train split as a training job reads it, its label names, the raw data and what was said."""
    raw, columns = load_data(DataConfig(data_path=str(path), on_bad_rows=policy, validation_split=0, **flags))
    names = infer_label_names(raw, columns, None)
    with logged() as said:
        split = to_text_split(raw, "train", columns, names, need_labels=True, required_by="")
    return split, names, raw, said


def one_line(message: str) -> str:
    assert "\n" not in message and len(message) <= LONGEST_LINE, (len(message), message)
    return message


def quick_teacher_args(data, tiny_models, out) -> list:
    return ["--data_path", data, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            *FAST_TRAINING, "--num_train_epochs", "1"]


# ---------------------------------------------------------------- scores


def scores_csv(path, bad: dict[int, str]) -> list[str]:
    """sentence,score rows with fractional scores; `bad` replaces the score of some rows (0-based)."""
    scores = [f"{(i % 21) / 4:.2f}" for i in range(40)]  # 0.00, 0.25, ... 5.00
    for row, value in bad.items():
        scores[row] = value
    path.write_text("sentence,score\n" + "".join(f"text number {i},{s}\n" for i, s in enumerate(scores)))
    return scores


def test_a_nan_or_inf_score_is_a_bad_row_and_the_task_stays_regression(tmp_path, tiny_models):
    path = tmp_path / "train.csv"
    scores = scores_csv(path, {4: "nan", 9: "inf", 30: "-Infinity"})
    with pytest.raises(UserError) as caught:
        read_train(path)
    message = one_line(str(caught.value))
    for part in ("3 bad rows", "line 6: label 'nan' is not a finite number", "line 11: label 'inf'",
                 "line 32: label '-Infinity'"):
        assert part in message, (part, message)
    for policy in ("warn", "skip"):
        split, names, raw, said = read_train(path, policy)
        assert names == [REGRESSION_LABEL]  # one output, not 22 classes named after the score strings
        assert split.labels == [float(s) for i, s in enumerate(scores) if i not in (4, 9, 30)]
        assert raw.dropped["train"] == 3 and "dropped 3 bad rows" in said[0]
    assert has_scores(*load_data(DataConfig(data_path=str(path), validation_split=0)))
    # "nan" among words is a class name like any other.
    (tmp_path / "words.csv").write_text("sentence,label\na,nan\nb,yes\nc,nan\n")
    assert read_train(tmp_path / "words.csv")[1] == ["nan", "yes"]
    # The script: one line, nothing written.
    (tmp_path / "sts").mkdir()
    scores_csv(tmp_path / "sts" / "train.csv", {4: "nan"})
    out = tmp_path / "out"
    assert_clean_failure(run_script("trainer_teacher.py", *quick_teacher_args(tmp_path / "sts", tiny_models, out)),
                         "1 bad row", "line 6", "not a finite number", output_dir=out)


# ---------------------------------------------------------------- columns and quotes


@pytest.mark.parametrize("ext,sep", [(".csv", ","), (".tsv", "\t")])
def test_a_column_named_twice_is_refused_by_name(tmp_path, tiny_models, ext, sep):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [["sentence", "label", "label"]] + [[f"text {i}", str(i % 2), str(1 - i % 2)] for i in range(10)]
    (folder / f"train{ext}").write_text("".join(sep.join(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"names column 'label' more than once"):
        load_raw(str(folder))
    out = tmp_path / "out"
    assert_clean_failure(run_script("trainer_teacher.py", *quick_teacher_args(folder, tiny_models, out)),
                         f"train{ext}", "'label' more than once", output_dir=out)
    # Unnamed columns (trailing delimiters) cannot be chosen by name: they are no reason to refuse.
    (folder / f"train{ext}").write_text("".join(sep.join(r[:2] + ["", ""]) + "\n" for r in rows))
    assert list(load_raw(str(folder)).splits["train"].columns) == ["sentence", "label", ""]


def stray_quote_csv(path) -> int:
    """79 rows; the text of row 10 (line 11) opens a quote it never closes, and the next quoted text
    (line 71) closes it: the csv module reads lines 11 to 71 as one row of the right width."""
    lines = ["sentence,label"] + [f"sentence number {i},{i % 2}" for i in range(1, 80)]
    lines[10] = '"a stray quote here,0'
    lines[70] = '"a quoted text",1'
    path.write_text("\n".join(lines) + "\n")
    return 79 - 61  # the rows outside the swallowed span


def test_a_stray_quote_that_swallows_rows_is_a_bad_row_naming_its_span(tmp_path, tiny_models):
    path = tmp_path / "train.csv"
    kept = stray_quote_csv(path)
    with pytest.raises(UserError) as caught:
        read_train(path)
    message = one_line(str(caught.value))
    assert "1 bad row" in message and "from line 11 to line 71" in message and "stray quote on line 11" in message
    split, _, raw, said = read_train(path, "skip")
    assert len(split) == kept and raw.dropped["train"] == 1
    assert all("\n" not in t for t in split.texts)
    # Line breaks inside a quoted text are no fault of their own: an e-mail with commas on every line.
    (tmp_path / "mail.csv").write_text('text,label\n"Dear all,\nthe report, as promised,\nBest, Ann",ham\nbuy now,'
                                       'spam\n"free, free\nfree",spam\n')
    split, names, raw, said = read_train(tmp_path / "mail.csv")
    assert split.texts[0] == "Dear all,\nthe report, as promised,\nBest, Ann" and len(split) == 3 and not said
    # metrics.json counts the swallowing row among those dropped.
    folder = tmp_path / "data"
    folder.mkdir()
    stray_quote_csv(folder / "train.csv")
    (folder / "dev.csv").write_text("sentence,label\nsentence number 3,1\nsentence number 4,0\n")
    out = tmp_path / "out"
    result = run_script("trainer_teacher.py", *quick_teacher_args(folder, tiny_models, out), "--on_bad_rows", "skip")
    assert result.returncode == 0, result
    metrics = json.loads((out / "teacher" / "metrics.json").read_text())
    assert metrics["data"]["dropped_rows"]["train"] == 1 and metrics["train_examples"] == kept


def test_a_field_past_the_csv_limit_is_read_up_to_a_bound_and_then_refused_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "train.csv"
    long_text = "word " * 40000  # 200,000 characters: past the csv module's own limit of 131,072
    path.write_text(f"sentence,label\nshort,0\n\"{long_text}\",1\nalso short,0\n")
    split, _, _, _ = read_train(path)
    assert split.texts[1] == long_text and len(split) == 3
    limit = csv.field_size_limit()
    monkeypatch.setattr(kd_bert.data.read, "FIELD_LIMIT", 1000)
    with pytest.raises(UserError) as caught:
        read_train(path)
    assert "the row that starts on line 3 has a field of more than 1000 characters" in one_line(str(caught.value))
    assert csv.field_size_limit() == limit  # the module's limit is as it was


# ---------------------------------------------------------------- JSON lines and encodings


def test_a_malformed_jsonl_line_is_a_bad_row_with_its_own_line_number(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "first", "label": 1}\n\n{"text": "broken", "label": 0\n{"text": "fine", "label": 0}\n'
                    '[1, 2]\n{"text": "last", "label": 1}\n')
    with pytest.raises(UserError) as caught:
        read_train(path)
    message = one_line(str(caught.value))
    assert "2 bad rows" in message and "line 3: not valid JSON" in message and "line 5: a JSON list" in message
    split, _, raw, said = read_train(path, "skip")
    assert split.texts == ["first", "fine", "last"] and split.labels == [1, 0, 1] and raw.dropped["train"] == 2
    (tmp_path / "all.json").write_text('[{"text": "a", "label": 1},\n {"text": "b" "label": 0}]\n')
    with pytest.raises(UserError, match=r"all.json, line 2 column 15: Expecting ','"):
        load_raw(str(tmp_path / "all.json"))


NOT_UTF8 = "caf\u00e9".encode("latin-1")  # b"caf\xe9": Latin-1, offset 3 of the line


def test_text_that_is_not_utf8_is_refused_naming_the_file_and_the_byte(trained_teacher, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\na,0\nb,1\n")
    (tmp_path / "data" / "labels.txt").write_bytes(b"negative\n" + NOT_UTF8 + b"\n")
    with pytest.raises(UserError) as caught:
        load_raw(str(tmp_path / "data"))
    assert "labels.txt is not UTF-8 text: byte 0xe9 at offset 12 (line 2)" in one_line(str(caught.value))

    (tmp_path / "texts.txt").write_bytes(b"fine text\n" + NOT_UTF8 + b" text\n")
    columns = Columns(text="text", label="label", index=None)
    with pytest.raises(UserError, match=r"^--transfer_data .*texts.txt is not UTF-8 text: byte 0xe9 at offset 13 "
                                        r"\(line 2\)"):
        load_unlabeled(str(tmp_path / "texts.txt"), columns, "error")

    result = run_script("evaluate.py", "--model", trained_teacher, "--input_file", tmp_path / "texts.txt")
    assert_clean_failure(result, "--input_file", "texts.txt", "byte 0xe9 at offset 13 (line 2)")

    # A CSV read as a stream: the offset counts from the start of the file, not of a chunk.
    big = b"text,label\n" + b"".join(b"row %d,%d\n" % (i, i % 2) for i in range(20000))
    (tmp_path / "big.csv").write_bytes(big + NOT_UTF8 + b",1\n")
    with pytest.raises(UserError, match=f"big.csv is not UTF-8 text: byte 0xe9 at offset {len(big) + 3} "
                                        f"\\(line 20002\\)"):
        load_raw(str(tmp_path / "big.csv"))


# ---------------------------------------------------------------- --transfer_data


def test_transfer_data_errors_name_the_flag_and_the_txt_form_before_the_teacher_loads(
        sst2_slice, trained_teacher, tiny_models, tmp_path, monkeypatch):
    columns = resolve_columns(load_raw(str(sst2_slice)), None, None)
    (tmp_path / "notes.docx").write_text("x")
    (tmp_path / "empty").mkdir()
    for path, phrase in ((tmp_path / "missing.txt", "no such file or folder"),
                         (tmp_path / "missing.csv", "no such file or folder"),
                         (tmp_path / "notes.docx", "or .txt (one text per line)"),
                         (tmp_path / "empty", "or give a .txt file")):
        with pytest.raises(UserError) as caught:
            load_unlabeled(str(path), columns, "error")
        message = one_line(str(caught.value))
        assert message.startswith(f"--transfer_data {path}") and phrase in message and "--data_path" not in message

    loaded = []
    monkeypatch.setattr(kd_bert.jobs.distill, "load_teacher", lambda *args: loaded.append(args))
    config = DistillConfig(teacher_model=str(trained_teacher), student_model=str(tiny_models["student_base"]),
                           transfer_data=str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="^--transfer_data .*missing.txt: no such file"):
        distill(config, DataConfig(data_path=str(sst2_slice), max_length=32),
                TrainConfig(output_dir=str(tmp_path / "out"), report_to=["none"]))
    assert not loaded and not (tmp_path / "out" / "student").exists()


# ---------------------------------------------------------------- evaluate.py's validation split


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


def test_evaluate_refuses_a_validation_split_of_data_its_model_trained_on_whole(sst2_slice, tiny_models, tmp_path):
    data = tmp_path / "no-dev"
    data.mkdir()
    for name in ("train.tsv", "labels.txt"):
        (data / name).write_bytes((sst2_slice / name).read_bytes())
    trained = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(data), max_length=32,
                                                                          validation_split=0),
                            TrainConfig(output_dir=str(tmp_path / "run"), num_train_epochs=1, batch_size=32,
                                        max_train_samples=64, report_to=["none"], mixed_precision="no"))
    with pytest.raises(UserError, match=r"trained on all of the train split .*\(--validation_split 0"):
        evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                 DataConfig(data_path=str(data), max_length=32))
    # Asked for, it is carved, with the warning.
    result = evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                      DataConfig(data_path=str(data), max_length=32, validation_split=0.1))
    assert result.metrics["num_examples"] == 32


# ---------------------------------------------------------------- messages


def test_messages_that_list_values_name_a_few_and_count_the_rest(tmp_path):
    names = [f"intent_{i:02d}_with_a_rather_long_name" for i in range(77)]
    assert describe_labels(["negative", "positive"]) == "{0: negative, 1: positive}"
    shown = describe_labels(names)
    assert len(shown) < 100 and shown.startswith("{0: intent_00_") and re.search(r"and 7\d more\}$", shown)

    with pytest.raises(UserError) as caught:  # same labels, another order: the first id that differs is named
        check_label_names(names[:40] + names[41:] + names[40:41], names, "the teacher")
    assert "id 40 is 'intent_41_with_a_rather_long_name' in the data but 'intent_40_with_a_rather_long_name' in " \
           "the teacher (37 of 77 ids differ)" in one_line(str(caught.value))

    with pytest.raises(UserError) as caught:
        encode_labels([f"unknown label number {i}" for i in range(60)], names, "the data")
    assert re.search(r"'unknown label number 0' \(1 row\).* and 5\d more", one_line(str(caught.value)))

    train = TextSplit("train", ["a"] * 20, [i % 2 for i in range(20)])
    dev = TextSplit("validation", ["b"] * 60, [2 + i for i in range(60)])
    with pytest.raises(UserError) as caught:
        check_training_data(train, dev, names[:62])
    assert "more" in one_line(str(caught.value))
    with logged() as said:
        check_training_data(TextSplit("train", ["a"] * 77, list(range(77))), None, names)
    assert [one_line(line) for line in said] and "77 class(es) have fewer than 5" in said[0]

    columns = [f"column_number_{i}" for i in range(200)]
    (tmp_path / "wide.csv").write_text(",".join(columns) + "\n" + ",".join("x" for _ in columns) + "\n")
    with pytest.raises(UserError) as caught:
        resolve_columns(load_raw(str(tmp_path / "wide.csv")), None, "label")
    assert re.search(r"\(columns: column_number_0, .* and 19\d more\)", one_line(str(caught.value)))
