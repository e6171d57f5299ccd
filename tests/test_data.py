"""Every --data_path form reads into the same splits, texts and labels."""

import json
import time

import pytest
from helpers import NAMES, read_tsv, save_hub_shaped

from kd_bert.data.labels import (
    check_label_names,
    declared_label_names,
    encode_labels,
    infer_label_names,
)
from kd_bert.data.read import load_raw, normalize_split
from kd_bert.data.splits import resolve_columns, to_text_split
from kd_bert.errors import UserError


def text_split(path, split, names=NAMES, **columns):
    raw = load_raw(str(path))
    cols = resolve_columns(raw, columns.get("text"), columns.get("label"))
    return to_text_split(raw, split, cols, names, need_labels=False, required_by="test")


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


def test_columns_are_detected_when_unambiguous(tmp_path):
    (tmp_path / "train.csv").write_text("review,polarity\ngreat fun,1\ndull,0\n")
    raw = load_raw(str(tmp_path))
    cols = resolve_columns(raw, None, None)
    assert (cols.text, cols.label) == ("review", "polarity")


def test_ambiguous_text_column_asks_for_the_flag(tmp_path):
    (tmp_path / "train.csv").write_text("title,body,label\nA film,great fun,1\nB film,dull,0\n")
    with pytest.raises(UserError, match="--text_column"):
        resolve_columns(load_raw(str(tmp_path)), None, None)


def test_missing_column_lists_the_columns(sst2_slice):
    with pytest.raises(UserError, match=r"'review' not found.*columns: sentence, label"):
        resolve_columns(load_raw(str(sst2_slice)), "review", None)


def test_string_labels_get_sorted_ids(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,neg\nc,pos\n")
    raw = load_raw(str(tmp_path))
    cols = resolve_columns(raw, None, None)
    names = infer_label_names(raw, cols, None)
    assert names == ["neg", "pos"]
    assert to_text_split(raw, "train", cols, names, need_labels=True, required_by="").labels == [1, 0, 1]


def test_label_outside_the_models_labels_is_an_error():
    with pytest.raises(UserError, match=r"the data has label\(s\) 'x' \(2 rows\), '2' \(1 row\) that the model "
                                        r"does not have \{0: negative, 1: positive\}"):
        encode_labels(["0", "2", "x", "x"], NAMES, "the data")


def test_differing_label_maps_show_both():
    with pytest.raises(UserError, match=r"\{0: positive, 1: negative\}.*\{0: negative, 1: positive\}"):
        check_label_names(["positive", "negative"], NAMES, "the teacher")
    check_label_names(["LABEL_0", "LABEL_1"], NAMES, "the teacher")  # generic names carry no order


@pytest.mark.parametrize("name,expected", [("dev", "validation"), ("Valid", "validation"), ("train", "train")])
def test_split_names_are_normalized(name, expected):
    assert normalize_split(name) == expected


def test_missing_local_path_is_a_clear_error():
    with pytest.raises(UserError, match="no such file or folder"):
        load_raw("./data/no-such-folder")


def test_unreachable_hub_dataset_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(UserError, match="pass a local folder"):
        load_raw("kd-test-owner/no-such-dataset")
    assert time.perf_counter() - start < 30
