"""The table of data formats: every declared format reads a tiny file, no format exists without a reader,
and the messages and --data_path's help list exactly the declared formats."""

from __future__ import annotations

import csv
import json
import re

import pytest

from kd_bert.config import DataConfig
from kd_bert.registries.formats import BY_EXTENSION, EXTENSIONS, FORMATS, Format, read_csv, read_file
from kd_bert.data.read import load_raw
from kd_bert.errors import UserError

ROWS = [{"sentence": "a gorgeous , witty film", "label": "1"}, {"sentence": "a dull mess", "label": "0"}]


def _delimited(path, delimiter):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROWS[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(ROWS)


def _arrow_table():
    import pyarrow as pa

    return pa.table({name: [row[name] for row in ROWS] for name in ROWS[0]})


def _parquet(path):
    import pyarrow.parquet as pq

    pq.write_table(_arrow_table(), path)


# How a test writes ROWS in each format: a format added to formats.FORMATS needs its sample here too.
WRITERS = {
    ".tsv": lambda path: _delimited(path, "\t"),
    ".csv": lambda path: _delimited(path, ","),
    ".json": lambda path: path.write_text(json.dumps(ROWS), encoding="utf-8"),
    ".jsonl": lambda path: path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8"),
    ".parquet": _parquet,
}


def test_every_declared_format_has_a_sample_here():
    assert set(WRITERS) == set(EXTENSIONS)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.extension)
def test_every_declared_format_reads_a_tiny_file(tmp_path, fmt):
    path = tmp_path / f"train{fmt.extension}"
    WRITERS[fmt.extension](path)
    split = read_file(path)
    assert split.columns == {name: [row[name] for row in ROWS] for name in ROWS[0]}
    assert split.file == str(path) and not split.bad
    assert load_raw(str(path)).splits["train"].columns == split.columns  # the path a run takes reads it the same


def test_a_format_cannot_be_declared_without_a_reader():
    with pytest.raises(TypeError):
        Format(".xlsx")  # the point: a format without a reader cannot be built
    with pytest.raises(TypeError, match="needs a reader"):
        Format(".xlsx", None)
    with pytest.raises(ValueError, match="lower case with its dot"):
        Format("xlsx", read_csv)
    assert all(callable(fmt.read) for fmt in FORMATS)
    assert EXTENSIONS == tuple(fmt.extension for fmt in FORMATS) and len(BY_EXTENSION) == len(FORMATS)


def test_an_undeclared_file_type_is_refused_never_read_as_another_format(tmp_path):
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"PK\x03\x04 not a table this toolkit reads")
    with pytest.raises(UserError, match=re.escape(f"unsupported file type '.xlsx'; use one of {', '.join(EXTENSIONS)}, "
                                                  f"or a folder")):
        load_raw(str(path))
    with pytest.raises(KeyError):
        read_file(path)  # no fallback reader
    folder = tmp_path / "only-xlsx"
    folder.mkdir()
    (folder / "train.xlsx").write_bytes(b"x")
    with pytest.raises(UserError, match=re.escape(f"files named by split (train.tsv, dev.tsv, test.tsv; or "
                                                  f"{'/'.join(EXTENSIONS[1:])})")):
        load_raw(str(folder))


def test_the_data_path_help_lists_every_declared_format():
    help_text = DataConfig.__dataclass_fields__["data_path"].metadata["help"]
    assert f"({'/'.join(EXTENSIONS)})" in help_text
