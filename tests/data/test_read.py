"""Reading a --data_path: every form (GLUE TSV folders, saved datasets, single files) into the same splits,
texts and labels; split names; the faults a reader meets in the files users bring (byte-order marks, every
line end, stray quotes, huge fields, broken JSON lines, text that is not UTF-8, a column named twice), each
one line; and any column names, labels and text read back as written."""

import csv
import json
import time
from dataclasses import replace

import pytest
from helpers import (
    NAMES,
    assert_clean_failure,
    load_hypothesis_profile,
    one_line,
    quick_teacher_args,
    read_split,
    read_train,
    read_tsv,
    run_script,
    save_hub_shaped,
)
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import kd_bert.registries.formats
from kd_bert.data.labels import declared_label_names, infer_label_names
from kd_bert.data.read import Columns, load_raw, normalize_split
from kd_bert.data.splits import load_unlabeled, resolve_columns, to_text_split
from kd_bert.errors import UserError
from kd_bert.task import Task


def text_split(path, split, names=NAMES, **columns):
    raw = load_raw(str(path))
    cols = resolve_columns(raw, columns.get("text"), columns.get("label"))
    return to_text_split(raw, split, cols, Task.of(names), need_labels=False, required_by="test")


@pytest.fixture(scope="module")
def dev_rows(sst2_slice):
    return read_tsv(sst2_slice / "dev.tsv")[1:]


def test_glue_tsv_folder(sst2_slice, dev_rows):
    raw = load_raw(str(sst2_slice))
    assert set(raw.splits) == {"train", "validation", "test"}  # dev.tsv -> validation
    split = text_split(sst2_slice, "dev")
    assert split.texts == [r[0] for r in dev_rows]
    assert split.labels == [int(r[1]) for r in dev_rows]
    assert declared_label_names(raw, None) == NAMES  # from labels.txt


def test_glue_test_tsv_is_unlabeled_and_keeps_its_index(sst2_slice):
    split = text_split(sst2_slice, "test")
    rows = read_tsv(sst2_slice / "test.tsv")[1:]
    assert split.labels is None
    assert split.index == [r[0] for r in rows]
    assert split.texts == [r[1] for r in rows]


def test_tsv_with_quotes_is_read_without_quote_handling(tmp_path):
    (tmp_path / "train.tsv").write_text('sentence\tlabel\n"quoted start and a " inside\t1\nplain\t0\n')
    split = text_split(tmp_path, "train")
    assert split.texts == ['"quoted start and a " inside', "plain"]


def test_save_to_disk_dataset_dict(tmp_path, sst2_slice, dev_rows):
    folder = save_hub_shaped(tmp_path / "hub_sst2", sst2_slice)
    raw = load_raw(str(folder))
    assert set(raw.splits) == {"train", "validation", "test"}
    assert declared_label_names(raw, None) == NAMES  # from the ClassLabel feature
    split = text_split(folder, "validation")
    assert split.texts == [r[0] for r in dev_rows] and split.labels == [int(r[1]) for r in dev_rows]
    assert text_split(folder, "test").labels is None  # -1 everywhere


def test_single_saved_split_folder(tmp_path, sst2_slice):
    folder = save_hub_shaped(tmp_path / "hub_sst2", sst2_slice)
    raw = load_raw(str(folder / "test"))
    assert list(raw.splits) == ["test"]
    assert text_split(folder / "test", "test").labels is None


@pytest.mark.parametrize("ext", ["tsv", "csv", "json", "jsonl", "parquet"])
def test_single_file_forms(tmp_path, dev_rows, ext):
    import pandas as pd

    frame = pd.DataFrame({"sentence": [r[0] for r in dev_rows], "label": [int(r[1]) for r in dev_rows]})
    path = tmp_path / f"dev.{ext}"
    if ext == "tsv":
        path.write_text("sentence\tlabel\n" + "".join(f"{r[0]}\t{r[1]}\n" for r in dev_rows))
    elif ext == "csv":
        frame.to_csv(path, index=False)
    elif ext == "json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    elif ext == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    raw = load_raw(str(path))
    assert list(raw.splits) == ["validation"]
    split = text_split(path, "validation")
    assert split.texts == [r[0] for r in dev_rows]
    assert split.labels == [int(r[1]) for r in dev_rows]


@pytest.mark.parametrize("name,expected", [("dev", "validation"), ("Valid", "validation"), ("train", "train")])
def test_split_names_are_normalized(name, expected):
    assert normalize_split(name) == expected


# ---------------------------------------------------------------- what cannot be read, in one line


def test_missing_local_path_is_a_clear_error():
    with pytest.raises(UserError, match="no such file or folder"):
        load_raw("./data/no-such-folder")


def test_unreachable_hub_dataset_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(UserError, match="pass a local folder"):
        load_raw("kd-test-owner/no-such-dataset")
    assert time.perf_counter() - start < 30


def test_missing_data_path(tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", "--data_path", tmp_path / "nope", "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "no such file or folder", output_dir=tmp_path / "out")


def test_unreadable_data_file(tiny_models, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.parquet").write_bytes(b"this is not a parquet file")
    result = run_script("trainer_teacher.py", "--data_path", data, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "train.parquet", output_dir=tmp_path / "out")


def test_missing_split_lists_the_splits(trained_teacher, sst2_slice):
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--split", "holdout")
    assert_clean_failure(result, "no 'holdout' split", "train", "validation", "test")


# ---------------------------------------------------------------- files as users have them


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
    monkeypatch.setattr(kd_bert.registries.formats, "FIELD_LIMIT", 1000)
    with pytest.raises(UserError) as caught:
        read_train(path)
    assert "the row that starts on line 3 has a field of more than 1000 characters" in one_line(str(caught.value))
    assert csv.field_size_limit() == limit  # the module's limit is as it was


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


# ---------------------------------------------------------------- any column names, labels and text


load_hypothesis_profile()


column_name = st.text(st.characters(categories=("L", "N"), include_characters="_ é中"), min_size=1, max_size=12) \
    .map(str.strip).filter(bool)


def is_number(text: str) -> bool:
    """Numbers are read as ids ("2", "2.0" and "2e0" are one class) or, with a fraction, as regression
    scores, never as label names."""
    try:
        float(text)
    except ValueError:
        return False
    return True


label_spelling = st.text(st.characters(categories=("L", "N", "P", "Zs")), min_size=1, max_size=10) \
    .map(str.strip).filter(lambda s: s and not is_number(s))
any_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@given(st.lists(column_name, min_size=2, max_size=2, unique_by=str.casefold),
       st.lists(label_spelling, min_size=1, max_size=4, unique=True),
       st.lists(any_text, min_size=1, max_size=12), st.sampled_from(["csv", "jsonl"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# A row that spells the header: a repeated header line in a CSV, an ordinary example in JSON lines.
@example(names=["0", "A"], labels=[":", "A"], texts=["0", "0"], form="csv")
@example(names=["0", "A"], labels=[":", "A"], texts=["0", "0"], form="jsonl")
def test_any_columns_labels_and_text_round_trip(tmp_path_factory, names, labels, texts, form):
    """Any column names, label names and texts are read back as written; a blank text is a bad row,
    dropped under --on_bad_rows skip and counted, never kept and never lost silently."""
    text_column, label_column = names
    rows = [(t, labels[i % len(labels)]) for i, t in enumerate(texts)]
    # A CSV row that repeats the header is a bad row; JSON lines have no header to repeat.
    read = [row for row in rows if form != "csv" or row != (text_column, label_column)]
    kept = [(t, lab) for t, lab in read if t.strip()]
    path = tmp_path_factory.mktemp("prop") / f"train.{form}"
    if form == "csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([text_column, label_column])
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps({text_column: t, label_column: lab}, ensure_ascii=False) + "\n"
                                for t, lab in rows), encoding="utf-8")
    assume(kept)
    raw = replace(load_raw(str(path)), on_bad_rows="skip")
    columns = resolve_columns(raw, text_column, label_column)
    if len({lab for _, lab in read}) == 1:  # one output would be a regression model: no classifier
        with pytest.raises(UserError, match="one class only"):
            infer_label_names(raw, columns, None)
        return
    names_found = infer_label_names(raw, columns, None)
    split = to_text_split(raw, "train", columns, Task.of(names_found), need_labels=True, required_by="")
    assert names_found == sorted({lab for _, lab in read})  # a stable, sorted order
    assert [names_found[i] for i in split.labels] == [lab for _, lab in kept]
    assert split.texts == [t for t, _ in kept]  # unicode survives as it is
    assert raw.dropped["train"] == len(rows) - len(kept)
