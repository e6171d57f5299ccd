"""Reading a --data_path into named splits of raw columns.

A data path is one of:
  * a folder written by `datasets`' save_to_disk: a DatasetDict (has dataset_dict.json) or a
    single Dataset (has state.json), e.g. ./data/sst2/test;
  * a folder of files named by split: train.tsv, dev.tsv, test.tsv (GLUE) or .csv/.json/.jsonl/.parquet;
  * one such file (one split);
  * a hub dataset name (`name` or `name:config`), when the hub is reachable.
Split names are normalized (dev -> validation). The readers keep each row's line for messages and
record the rows they cannot read as bad rows (see splits.drop_bad_rows); what becomes of the
columns, splits and labels is splits.py's and labels.py's.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, clip, listed
from ..models.hub import load_hub_dataset, looks_like_path, quiet_datasets

SPLIT_ALIASES = {
    "dev": "validation",
    "valid": "validation",
    "val": "validation",
    "eval": "validation",
    "evaluation": "validation",
    "training": "train",
    "testing": "test",
}


DATA_EXTENSIONS = (".tsv", ".csv", ".json", ".jsonl", ".parquet")


LABEL_NAMES_FILE = "labels.txt"


# Preferred when a column flag is left to auto-detection, in this order.
TEXT_COLUMN_NAMES = ("sentence", "text", "content", "review", "utterance", "query", "question", "document")


LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "intent", "category", "score")  # score: GLUE's STS-B


# Sentence-pair columns detected when --text_column is not given (GLUE's and other common names);
# checked before single text columns, so QNLI's question/sentence never loses its question.
PAIR_COLUMN_NAMES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
                     ("question", "sentence"), ("text_a", "text_b"), ("text1", "text2"))


FIELD_LIMIT = 1 << 24  # characters in one CSV/TSV field: far beyond any text a model reads, and still bounded


INDEX_COLUMN_NAMES = ("idx", "index", "id", "guid")


def normalize_split(name: str) -> str:
    name = name.strip().lower()
    return SPLIT_ALIASES.get(name, name)


@dataclass
class RawSplit:
    """One split as columns of Python values, before any column is chosen."""

    columns: dict[str, list]
    class_names: list[str] | None = None  # from a `datasets` ClassLabel feature on the label column
    file: str | None = None  # the file it was read from, for messages
    lines: list[int] | None = None  # each row's first line in that file (None: row i is example i + 1)
    # Rows the reader could not make into an example (a missing or extra field, a repeated header
    # line): (line, problem). They are not in `columns`; --on_bad_rows decides what becomes of the run.
    bad: list[tuple[int, str]] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def line_of(self, row: int) -> int:
        return self.lines[row] if self.lines is not None else row + 1

    def subset(self, rows: list[int]) -> "RawSplit":
        """These rows only, in this order; the rows the reader dropped stay on record."""
        lines = [self.line_of(i) for i in rows]
        return RawSplit({name: [values[i] for i in rows] for name, values in self.columns.items()}, self.class_names,
                        self.file, lines, self.bad)


@dataclass
class RawData:
    source: str
    splits: dict[str, RawSplit]
    label_names: list[str] | None = None  # from labels.txt
    # A lone file or saved split whose name is no split name (reviews.csv): its one split is train, and a
    # validation split is carved from it as from any train split; evaluate.py scores it whole, unless its
    # model was trained on it (see splits.load_data).
    lone_file: bool = False
    on_bad_rows: str = "error"  # what a bad row does to the run: error, warn (drop and list) or skip (drop)
    dropped: dict[str, int] = field(default_factory=dict)  # bad rows dropped, by split, for metrics.json
    carved: float | None = None  # the fraction of train held out as the validation split (carve_validation)


@dataclass
class Columns:
    text: str
    label: str | None  # None: no split has labels
    index: str | None
    pair: str | None = None  # the second text of a sentence-pair task


@dataclass
class TextSplit:
    """What the models see: texts (and second texts for a pair task), label ids or, for a regression
    task, float scores (None for an unlabeled split), and example ids."""

    name: str
    texts: list[str]
    labels: list[int] | list[float] | None
    index: list = field(default_factory=list)
    pairs: list[str] | None = None
    # When a sample was drawn from the split (--max_train_samples): each label id's count in the whole
    # split, which says what classes the data has, whatever the sample holds.
    drawn_from: Counter | None = None

    def __len__(self) -> int:
        return len(self.texts)


TRANSFER_FLAG = "--transfer_data"  # it takes what --data_path takes, and a .txt file of texts too


def load_raw(data_path: str, flag: str = "--data_path") -> RawData:
    """`flag` names the setting the path came from, for messages."""
    path = Path(data_path).expanduser()
    txt = " or .txt (one text per line)" if flag == TRANSFER_FLAG else ""
    if path.is_dir():
        return _load_folder(path, flag)
    if path.is_file():
        if path.suffix.lower() not in DATA_EXTENSIONS:
            raise UserError(
                f"{flag} {data_path}: unsupported file type '{path.suffix}'; "
                f"use one of {', '.join(DATA_EXTENSIONS)}{txt}, or a folder"
            )
        return RawData(str(path), {_split_name_of(path.stem): _read_file(path)}, _read_label_names(path.parent),
                       lone_file=not _is_split_name(path.stem))
    if _looks_local(data_path) or (txt and path.suffix.lower() == ".txt"):
        example = "./unlabeled.txt" if txt else "./data/sst2"
        raise UserError(f"{flag} {data_path}: no such file or folder; check the path (e.g. {example})")
    splits = load_hub_dataset(data_path, flag)
    return RawData(data_path, {normalize_split(k): _from_dataset(v) for k, v in splits.items()})


def _looks_local(data_path: str) -> bool:
    """Shaped like a path, or named like a data file: a missing local path, not a hub dataset."""

    return looks_like_path(data_path) or Path(data_path).suffix.lower() in DATA_EXTENSIONS


def _is_split_name(stem: str) -> bool:
    return normalize_split(stem) in ("train", "validation", "test")


def _split_name_of(stem: str) -> str:
    """A lone file or saved split is named for its stem (test.tsv -> test); any other name is train."""
    return normalize_split(stem) if _is_split_name(stem) else "train"


def _load_folder(path: Path, flag: str) -> RawData:
    if (path / "dataset_dict.json").exists():
        dataset_dict = _load_from_disk(path, flag)
        splits = {normalize_split(k): _from_dataset(v) for k, v in dataset_dict.items()}
        return RawData(str(path), splits, _read_label_names(path))
    if (path / "state.json").exists():
        return RawData(str(path), {_split_name_of(path.name): _from_dataset(_load_from_disk(path, flag))},
                       _read_label_names(path), lone_file=not _is_split_name(path.name))
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS)
    if not files:
        txt = "; or give a .txt file, one text per line" if flag == TRANSFER_FLAG else ""
        raise UserError(
            f"{flag} {path}: the folder holds no dataset: expected a save_to_disk folder or files "
            f"named by split (train.tsv, dev.tsv, test.tsv; or .csv/.json/.jsonl/.parquet){txt}"
        )
    splits: dict[str, RawSplit] = {}
    for file in files:
        name = normalize_split(file.stem)
        if name in splits:
            raise UserError(f"{flag} {path}: two files give split '{name}'; keep one of them")
        splits[name] = _read_file(file)
    return RawData(str(path), splits, _read_label_names(path))


def _load_from_disk(path: Path, flag: str):
    datasets = quiet_datasets()
    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # corrupt arrow files, version mismatch
        raise UserError(f"{flag} {path}: cannot read this saved dataset ({clip(exc, 120)}); re-create it with "
                        f"save_to_disk") from exc


def _from_dataset(dataset) -> RawSplit:
    """A `datasets.Dataset` as columns of Python values, keeping ClassLabel names."""
    from datasets import (
        ClassLabel,  # loaded by now: only a saved or hub dataset gets here
    )

    class_names = None
    for name, feature in dataset.features.items():
        if isinstance(feature, ClassLabel) and name in LABEL_COLUMN_NAMES + ("label",):
            class_names = list(feature.names)
            break
    if class_names is None:
        labels = [f for f in dataset.features.values() if isinstance(f, ClassLabel)]
        if len(labels) == 1:
            class_names = list(labels[0].names)
    return _named(RawSplit(dataset.to_dict(), class_names))


def _read_label_names(folder: Path) -> list[str] | None:
    file = folder / LABEL_NAMES_FILE
    if not file.is_file():
        return None
    names = [line.strip() for line in read_text(file, str(file)).splitlines() if line.strip()]
    return names or None


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's text, without a byte-order mark; a file that is not UTF-8 is refused, naming
    `what` (the flag and path, or the path) and where the first undecodable byte is."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8(path, what) from None


def not_utf8(path: Path, what: str) -> UserError:
    """The error for a file that is not UTF-8: the offset and line of its first undecodable byte, counted
    in the whole file (a decoding error reading a stream counts from the chunk it was in)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return UserError(f"{what} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) "
                         f"cannot be decoded; save the file as UTF-8")
    return UserError(f"{what} is not UTF-8 text; save the file as UTF-8")


def _read_file(path: Path) -> RawSplit:
    ext = path.suffix.lower()
    try:
        if ext in (".tsv", ".csv"):
            return _read_delimited(path, ext)
        if ext in (".json", ".jsonl"):
            return _read_json(path, ext)
        return _read_parquet(path)
    except UserError:
        raise
    except UnicodeDecodeError:
        raise not_utf8(path, str(path)) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {clip(exc, 160)}; check that it is a valid {ext[1:]} file") from exc
    except Exception as exc:  # pyarrow raises its own error types
        raise UserError(f"cannot read {path}: {clip(exc, 160)}; check that it is a valid {ext[1:]} file") from exc


def _read_parquet(path: Path) -> RawSplit:
    import pyarrow.parquet as pq  # only for .parquet files

    table = pq.read_table(path)
    _refuse_repeated_columns(path, table.column_names)
    return _named(RawSplit(table.to_pydict(), file=str(path)))


def _refuse_repeated_columns(path: Path, names: list[str]) -> None:
    """A column name given twice: the later column would silently replace the earlier one. Unnamed
    columns (trailing delimiters, a spreadsheet's empty header cells) cannot be chosen by name anyway."""
    repeated = [name for name, n in Counter(names).items() if n > 1 and name.strip()]
    if repeated:
        shown = listed(f"'{clip(name)}'" for name in repeated)
        raise UserError(f"{path}: the header names column {shown} more than once, and a later column would replace "
                        f"the earlier; rename or remove one of them")


@contextmanager
def _field_limit(limit: int):
    """The csv module's field size limit (process-wide) raised while one file is read."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _read_delimited(path: Path, ext: str) -> RawSplit:
    """Rows of a CSV or TSV file with the line each starts on. Blank lines are skipped, whatever the
    line ends; "utf-8-sig" drops a byte-order mark, which would otherwise be glued to the first column's
    name. A row whose field count differs from the header's, a repeated header line, and a quoted
    field that swallowed rows of the file (see _without_swallowed_rows) are recorded as bad rows, not read."""
    # GLUE's TSVs are not quoted (sentences contain bare quotes), so TSV is read with no quote
    # handling at all; CSV follows the usual quoting rules (commas and line breaks inside quotes).
    delimiter, quoting = ("\t", csv.QUOTE_NONE) if ext == ".tsv" else (",", csv.QUOTE_MINIMAL)
    header, body, lines, bad = None, [], [], []
    spans = []  # (row in body, its last line) for the rows that span several lines
    end = 0  # the last line of the previous row: a quoted field may span several lines
    with open(path, newline="", encoding="utf-8-sig") as f, _field_limit(FIELD_LIMIT):
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        width = -1
        try:
            for row in reader:
                start, end = end + 1, reader.line_num
                if len(row) == width and row[0] and row != header:  # the common case, checked first
                    body.append(row)
                    lines.append(start)
                    if end != start:
                        spans.append((len(body) - 1, end))
                elif not any(field.strip() for field in row):  # a blank line, or one of empty fields only
                    continue
                elif header is None:
                    header, width = row, len(row)
                    _refuse_repeated_columns(path, header)
                elif row == header:
                    bad.append((start, "a repeated header line"))
                elif len(row) != width:
                    runs_on = f", and it runs to line {end}: an unclosed quote?" if end != start else ""
                    bad.append((start, f"{len(row)} field{'s' if len(row) != 1 else ''} where the header has "
                                       f"{width}{runs_on}"))
                else:
                    body.append(row)
                    lines.append(start)
                    if end != start:
                        spans.append((len(body) - 1, end))
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise UserError(f"{path}: the row that starts on line {end + 1} has a field of more than "
                                f"{FIELD_LIMIT} characters; an unclosed quote? Close it, or shorten the text") from None
            raise UserError(f"{path}, line {reader.line_num}: {exc}; check that it is a valid {ext[1:]} file") from None
    if header is None:
        raise UserError(f"{path} is empty; it needs a header line and at least one row")
    if spans:
        body, lines = _without_swallowed_rows(body, lines, spans, delimiter, bad)
    columns = {name: [row[i] for row in body] for i, name in enumerate(header)}
    return RawSplit(columns, file=str(path), lines=lines, bad=bad)


LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _without_swallowed_rows(body: list[list[str]], lines: list[int], spans: list[tuple[int, int]], delimiter: str,
                            bad: list[tuple[int, str]]) -> tuple[list[list[str]], list[int]]:
    """The rows without those whose quoted fields swallowed rows of the file, which go to `bad`, named
    by their line span. A stray opening quote makes the csv module read on, delimiters and line ends
    included, to the next quote: many rows become one example with the label of the last. A text may
    well hold line breaks (an e-mail, a review in paragraphs), so the line count alone decides
    nothing; lines inside the field that are shaped like rows of this file do."""
    known: list[set[str]] | None = None
    swallowing: dict[int, str] = {}
    for row, last in spans:
        if known is None:  # each column's values in single-line rows, made once, only when needed
            single = set(range(len(body))) - {r for r, _ in spans}
            known = [{body[r][i].strip() for r in single} for i in range(len(body[row]))]
        count = sum(_shaped_like_a_row(part, delimiter, known) for value in body[row] if "\n" in value or "\r" in value
                    for part in LINE_BREAK.split(value))
        if count:
            swallowing[row] = (f"a quoted field runs from line {lines[row]} to line {last} and holds {count} "
                               f"line{'s' if count != 1 else ''} shaped like rows of this file: a stray quote on "
                               f"line {lines[row]}?")
    if not swallowing:
        return body, lines
    bad += [(lines[row], why) for row, why in swallowing.items()]
    keep = [r for r in range(len(body)) if r not in swallowing]
    return [body[r] for r in keep], [lines[r] for r in keep]


def _shaped_like_a_row(line: str, delimiter: str, known: list[set[str]]) -> bool:
    """Whether a line inside a quoted field reads as a row of the file: as many fields as the header
    has, and one of them, other than the longest (the text), a value its column holds (a label)."""
    fields = line.split(delimiter)
    if len(fields) != len(known) or len(fields) < 2:
        return False
    longest = max(range(len(fields)), key=lambda i: len(fields[i]))
    return any(i != longest and fields[i].strip() in known[i] and fields[i].strip() for i in range(len(fields)))


def _read_json(path: Path, ext: str) -> RawSplit:
    """A .json list of objects, or one object per line (.jsonl, or a .json written so). A line that is not
    a JSON object is a bad row, named by its line in the file."""
    text = read_text(path, str(path))
    lines, bad = None, []
    if ext == ".json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {exc.lineno} column {exc.colno}: {exc.msg}; check that it is valid "
                            f"JSON") from None
    else:  # .jsonl, or a .json written one record per line
        records, lines = [], []
        # The line numbers of a text editor: splitlines would also break at form feeds and the like.
        for n, line in enumerate(LINE_BREAK.split(text), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append((n, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(record, dict):
                bad.append((n, f"a JSON {type(record).__name__}, not an object"))
                continue
            records.append(record)
            lines.append(n)
    if not records or not all(isinstance(r, dict) for r in records):
        found = f" (line {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise UserError(f"{path}: expected a list of objects (or one object per line), one per example{found}")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return _named(RawSplit({name: [r.get(name) for r in records] for name in names}, file=str(path), lines=lines,
                           bad=bad))


def _named(split: RawSplit) -> RawSplit:
    """Column names without a byte-order mark, which some tools write into a JSON key or parquet schema."""
    split.columns = {name.lstrip("\ufeff"): values for name, values in split.columns.items()}
    return split


def get_split(raw: RawData, split: str, *, required_by: str) -> RawSplit:
    name = normalize_split(split)
    if name not in raw.splits:
        raise UserError(
            f"{raw.source} has no '{name}' split (it has: {listed(raw.splits)}); {required_by}"
        )
    return raw.splits[name]
