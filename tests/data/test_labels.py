"""Label names and ids: string labels get sorted ids, numeric labels compare as numbers, fractional scores
make a regression task (a nan score is a bad row), label maps must agree, and messages that list labels
name a few and count the rest."""

import re

import pytest
from helpers import (
    NAMES,
    assert_clean_failure,
    logged,
    one_line,
    quick_teacher_args,
    read_split,
    read_train,
    run_script,
)

from kd_bert.config import DataConfig
from kd_bert.data.checks import check_training_data
from kd_bert.data.labels import (
    check_label_names,
    describe_labels,
    encode_labels,
    has_scores,
    infer_label_names,
)
from kd_bert.data.read import Columns, RawData, RawSplit, TextSplit, load_raw
from kd_bert.data.splits import load_data, resolve_columns, to_text_split
from kd_bert.errors import UserError
from kd_bert.task import REGRESSION_LABEL, Task


def test_string_labels_get_sorted_ids(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,neg\nc,pos\n")
    raw = load_raw(str(tmp_path))
    cols = resolve_columns(raw, None, None)
    names = infer_label_names(raw, cols, None)
    assert names == ["neg", "pos"]
    assert to_text_split(raw, "train", cols, Task.of(names), need_labels=True, required_by="").labels == [1, 0, 1]


def test_label_outside_the_models_labels_is_an_error():
    with pytest.raises(UserError, match=r"the data has label\(s\) 'x' \(2 rows\), '2' \(1 row\) that the model "
                                        r"does not have \{0: negative, 1: positive\}"):
        encode_labels(["0", "2", "x", "x"], Task.of(NAMES), "the data")


def test_differing_label_maps_show_both():
    with pytest.raises(UserError, match=r"\{0: positive, 1: negative\}.*\{0: negative, 1: positive\}"):
        check_label_names(["positive", "negative"], NAMES, "the teacher")
    check_label_names(["LABEL_0", "LABEL_1"], NAMES, "the teacher")  # generic names carry no order


def test_numeric_labels_compare_as_numbers(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,1.0\nbad,0.0\nfine,1\n")
    (tmp_path / "dev.csv").write_text("text,label\nnice,1\nawful,0\n")
    train, names, raw, _ = read_split(tmp_path)
    dev = to_text_split(raw, "validation", resolve_columns(raw, None, None), Task.of(names), need_labels=True,
                        required_by="")
    assert names == ["LABEL_0", "LABEL_1"]
    assert train.labels == [1, 0, 1] and dev.labels == [1, 0]


def test_a_validation_label_the_training_split_lacks_is_refused_by_name(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,1\nbad,0\n")
    (tmp_path / "dev.csv").write_text("text,label\nnice,1\nhm,maybe\nwell,maybe\n")
    with pytest.raises(UserError, match=r"'validation' split .* has label\(s\) 'maybe' \(2 rows\) that the training "
                                        r"split does not have"):
        read_split(tmp_path, split="validation")


def test_score_labels_are_detected_and_encoded():
    def raw(values):
        return RawData("data", {"train": RawSplit({"text": ["t"] * len(values), "label": values})})

    columns = Columns(text="text", label="label", index=None)
    assert infer_label_names(raw(["3.8", "2", "0.25"]), columns, None) == [REGRESSION_LABEL]
    assert infer_label_names(raw([1.5, 0.0, 4.0]), columns, None) == [REGRESSION_LABEL]
    assert infer_label_names(raw([0, 1, 2.0, "1"]), columns, None) == ["LABEL_0", "LABEL_1", "LABEL_2"]  # whole numbers
    assert infer_label_names(raw(["1.5", "good"]), columns, None) == ["1.5", "good"]  # a name makes them classes
    assert not has_scores(raw([None, None]), columns)
    with pytest.raises(UserError, match="one class only"):  # one output is a regression model, not a classifier
        infer_label_names(raw(["good", "good"]), columns, None)
    assert encode_labels(["3.8", 2, 0.25], Task.of([REGRESSION_LABEL]), "dev") == [3.8, 2.0, 0.25]
    assert encode_labels([-1, None], Task.of([REGRESSION_LABEL]), "test") is None  # unlabeled, as GLUE's test split
    for values, phrase in ((["3.8", ""], "row 1 has no label"), (["3.8", "high"], "'high', not a number"),
                           (["3.8", "-100"], "marks an unlabeled example")):
        with pytest.raises(UserError, match=phrase):
            encode_labels(values, Task.of([REGRESSION_LABEL]), "dev")


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
        encode_labels([f"unknown label number {i}" for i in range(60)], Task.of(names), "the data")
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
