"""Reading a --data_path into named splits of (text, label) and mapping labels to ids.

A data path is one of:
  * a folder written by `datasets`' save_to_disk: a DatasetDict (has dataset_dict.json) or a
    single Dataset (has state.json), e.g. ./data/sst2/test;
  * a folder of files named by split: train.tsv, dev.tsv, test.tsv (GLUE) or .csv/.json/.jsonl/.parquet;
  * one such file (one split);
  * a hub dataset name (`name` or `name:config`), when the hub is reachable.
Split names are normalized (dev -> validation). Labels may be integers, names, or -1/missing for
an unlabeled split (SST-2's test set). Label names come from, in order: --label_names, a ClassLabel
feature, a labels.txt beside the data files (one name per line, line i is id i), the sorted set of
string labels, or LABEL_0..LABEL_{n-1} for bare integers. Numeric labels that are not all whole
numbers (STS-B's similarity scores) make a regression task: one label, REGRESSION_LABEL.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from .config import EVAL_SAMPLE_SEED, DataConfig
from .errors import SHOWN, UserError, clip, listed
from .hub import load_hub_dataset, looks_like_path, quiet_datasets

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
CARVE_SEED = 42  # the held-out validation examples are the same in every script and every run
FIELD_LIMIT = 1 << 24  # characters in one CSV/TSV field: far beyond any text a model reads, and still bounded
INDEX_COLUMN_NAMES = ("idx", "index", "id", "guid")
# A regression task (STS-B-style similarity scores) has one output, named so; Hugging Face's own
# convention is that num_labels == 1 means regression.
REGRESSION_LABEL = "score"


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
    # A lone file or saved split whose name is no split name (reviews.csv): used whole, never split.
    whole: bool = False
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


@dataclass(frozen=True)
class Sample:
    """--max_train_samples or --max_eval_samples: `size` examples of a split, drawn with `seed`."""

    flag: str
    size: int
    seed: int
    fixed: bool = False  # the seed is EVAL_SAMPLE_SEED, not the run's --seed


def train_sample(size: int | None, seed: int) -> Sample | None:
    return None if size is None else Sample("--max_train_samples", size, seed)


def eval_sample(size: int | None) -> Sample | None:
    return None if size is None else Sample("--max_eval_samples", size, EVAL_SAMPLE_SEED, fixed=True)


# ---------------------------------------------------------------- reading


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
                       whole=not _is_split_name(path.stem))
    if _looks_local(data_path) or (txt and path.suffix.lower() == ".txt"):
        example = "./unlabeled.txt" if txt else "./data/sst2"
        raise UserError(f"{flag} {data_path}: no such file or folder; check the path (e.g. {example})")
    splits = load_hub_dataset(data_path, flag)
    return RawData(data_path, {normalize_split(k): _from_dataset(v) for k, v in splits.items()})


def load_data(data: DataConfig, say=print) -> tuple[RawData, Columns]:
    """--data_path read, its columns picked from the column flags, and a validation split carved
    from train when the data has none (--validation_split)."""
    raw = replace(load_raw(data.data_path), on_bad_rows=data.on_bad_rows)
    columns = resolve_columns(raw, data.text_column, data.label_column, data.text_pair_column)
    raw, note = carve_validation(raw, columns, data.validation_split)
    if note:
        say(note)
    return raw, columns


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
                       _read_label_names(path), whole=not _is_split_name(path.name))
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
    from datasets import ClassLabel  # loaded by now: only a saved or hub dataset gets here

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


def load_unlabeled(path: str, columns: Columns, on_bad_rows: str, say=print) -> TextSplit:
    """Texts with no labels, for the teacher to label (--transfer_data): any form --data_path takes
    (its train split, or its only split), or a .txt file with one text per line. Only the text
    column(s) of the labeled data are needed (detected as for --data_path when named otherwise)."""
    file = Path(path).expanduser()
    if file.is_file() and file.suffix.lower() == ".txt":
        if columns.pair is not None:
            raise UserError(f"--transfer_data {path}: a sentence-pair task needs both texts of each example; give a "
                            f"file with the columns '{columns.text}' and '{columns.pair}' instead of plain text")
        lines = LINE_BREAK.split(read_text(file, f"{TRANSFER_FLAG} {path}"))
        texts = [line.strip() for line in lines if line.strip()]
        if not texts:
            raise UserError(f"--transfer_data {path}: the file has no text; give one text per line")
        return TextSplit("transfer", texts, None, list(range(len(texts))))
    raw = replace(load_raw(path, TRANSFER_FLAG), on_bad_rows=on_bad_rows)
    if len(raw.splits) > 1 and "train" not in raw.splits:
        raise UserError(f"--transfer_data {path} has several splits ({listed(raw.splits)}) and no train split; "
                        f"give one file or folder of texts, or a .txt file with one text per line")
    name = "train" if "train" in raw.splits else next(iter(raw.splits))
    present = list(raw.splits[name].columns)
    text = columns.text if columns.text in present else None
    pair = columns.pair if columns.pair in present else None
    found = resolve_columns(raw, text, None, pair)
    if columns.pair is not None and found.pair is None:
        raise UserError(f"--transfer_data {path}: no column '{columns.pair}' for the second text of each pair "
                        f"(columns: {listed(present)}); name it as in --data_path")
    # Labels the file may carry are not used: the teacher labels every text.
    found = Columns(text=found.text, label=None, index=None, pair=found.pair)
    split = to_text_split(raw, name, found, [], need_labels=False, required_by="", say=say)
    return TextSplit("transfer", split.texts, None, split.index, split.pairs)


# ---------------------------------------------------------------- columns


def resolve_columns(raw: RawData, text_column: str | None, label_column: str | None,
                    pair_column: str | None = None) -> Columns:
    """Pick the text (and second text), label and index columns. An explicit flag must exist; a flag
    left to None is detected: the usual name if present, else the only candidate column, else an error."""
    all_columns: dict[str, None] = {}
    for split in raw.splits.values():
        all_columns.update(dict.fromkeys(split.columns))
    columns = list(all_columns)
    names = listed(columns)

    index = next((c for c in INDEX_COLUMN_NAMES if c in all_columns), None)
    if label_column is not None:
        if label_column not in all_columns:
            raise UserError(f"label column '{label_column}' not found in {raw.source} (columns: {names}); pass --label_column")
        label = label_column
    else:
        label = next((c for c in LABEL_COLUMN_NAMES if c in all_columns), None)

    pair = None
    if pair_column is not None:
        if pair_column not in all_columns:
            raise UserError(f"text pair column '{pair_column}' not found in {raw.source} (columns: {names}); "
                            f"pass --text_pair_column")
        pair = pair_column
    if text_column is not None:
        if text_column not in all_columns:
            raise UserError(f"text column '{text_column}' not found in {raw.source} (columns: {names}); pass --text_column")
        text = text_column
    elif pair is None and (found := next(((a, b) for a, b in PAIR_COLUMN_NAMES if a in all_columns and b in all_columns),
                                         None)):
        text, pair = found
    else:
        text = next((c for c in TEXT_COLUMN_NAMES if c in all_columns), None)
        if text is None:
            candidates = [c for c in columns if c not in (label, index) and _is_text_column(raw, c)]
            if len(candidates) != 1:
                raise UserError(
                    f"cannot tell which column of {raw.source} holds the text (columns: {names}); pass --text_column"
                )
            text = candidates[0]

    if label is None:
        # One column left besides text and index: that is the label.
        rest = [c for c in columns if c not in (text, pair, index)]
        label = rest[0] if len(rest) == 1 else None
    return Columns(text=text, label=label, index=index, pair=pair)


def _is_text_column(raw: RawData, column: str) -> bool:
    for split in raw.splits.values():
        values = split.columns.get(column, [])
        if values:
            strings = [v for v in values[:200] if isinstance(v, str)]
            return len(strings) == len(values[:200]) and any(not _is_int_like(v) for v in strings)
    return False


# ---------------------------------------------------------------- splits and labels


def get_split(raw: RawData, split: str, *, required_by: str) -> RawSplit:
    name = normalize_split(split)
    if name not in raw.splits:
        raise UserError(
            f"{raw.source} has no '{name}' split (it has: {listed(raw.splits)}); {required_by}"
        )
    return raw.splits[name]


def declared_label_names(raw: RawData, label_names_flag: list[str] | None) -> list[str] | None:
    """Label names the data itself declares, in id order, or None when it declares none."""
    if label_names_flag:
        return list(label_names_flag)
    for split in raw.splits.values():
        if split.class_names:
            return split.class_names
    return raw.label_names


def infer_label_names(raw: RawData, columns: Columns, label_names_flag: list[str] | None) -> list[str]:
    """The label set a new classifier is built with (the teacher, trained from data); [REGRESSION_LABEL]
    when the labels are scores (see has_scores)."""
    declared = declared_label_names(raw, label_names_flag)
    if declared:
        return _classes(declared, raw.source)
    values = _label_values(raw, columns)
    if _are_scores(values):
        return [REGRESSION_LABEL]
    if not values:
        raise UserError(f"{raw.source} has no labels in column '{columns.label}'; pass --label_column")
    if all(_is_int_like(v) for v in values):
        top = max(int(float(v)) for v in _distinct(values))
        return [f"LABEL_{i}" for i in range(max(top + 1, 2))]
    return _classes(sorted({str(_label_key(v)) for v in _distinct(values)}), raw.source)


def _label_values(raw: RawData, columns: Columns) -> list:
    """The labels the label set is read from. The training split alone says which classes there are (a
    label found only in a validation or test split was never taught, and to_text_split refuses it by
    name); every split's when the training split has none. Neither a missing label nor a nan or inf
    among numbers (see _non_finite_numbers) says anything of the label set: those are bad rows."""
    train = raw.splits.get("train")
    splits = [train] if train is not None and _labeled(train, columns) else list(raw.splits.values())
    values = [v for s in splits for v in s.columns.get(columns.label, []) if not _is_missing(v)]
    non_finite = _non_finite_numbers(values)
    return [v for v in values if _key(v) not in non_finite] if non_finite else values


def _distinct(values: list) -> list:
    """Each value once (by type and value), for work done per value."""
    try:
        return list({(type(v), v): v for v in values}.values())
    except TypeError:  # unhashable values
        return values


def has_labels(raw: RawData, columns: Columns) -> bool:
    return any(_labeled(split, columns) for split in raw.splits.values())


def _labeled(split: RawSplit, columns: Columns) -> bool:
    return columns.label is not None and not all(_is_missing(v) for v in split.columns.get(columns.label, []))


def to_text_split(
    raw: RawData, split: str, columns: Columns, label_names: list[str], *, need_labels: bool, required_by: str,
    sample: Sample | None = None, labels_from: str = "the model", say=print,
) -> TextSplit:
    """The split's texts, label ids and example ids, without its bad rows (see drop_bad_rows); with
    `sample`, only the examples it draws (see draw_sample). `labels_from` names where label_names came
    from, for messages."""
    data = get_split(raw, split, required_by=required_by)
    name = normalize_split(split) if normalize_split(split) in raw.splits else split
    data = drop_bad_rows(raw, name, data, columns, say)
    if data.num_rows == 0:
        raise UserError(f"the '{name}' split of {raw.source} is empty; it needs at least one example")
    if columns.text not in data.columns:
        raise UserError(
            f"the '{name}' split of {raw.source} has no text column '{columns.text}' "
            f"(columns: {listed(data.columns)}); pass --text_column"
        )
    if columns.pair is not None and columns.pair not in data.columns:
        raise UserError(f"the '{name}' split of {raw.source} has no text pair column '{columns.pair}' "
                        f"(columns: {listed(data.columns)}); pass --text_pair_column")
    # Every label is checked, also those of rows a sample leaves out: the data is wrong either way.
    labels = None
    if columns.label is not None and columns.label in data.columns:
        labels = encode_labels(data.columns[columns.label], label_names, f"the '{name}' split of {raw.source}",
                               labels_from, columns.label)
    if labels is None and need_labels:
        raise UserError(
            f"the '{name}' split of {raw.source} has no labels (columns: {listed(data.columns)}); "
            f"pass --label_column naming the column that holds them"
        )
    drawn_from = None
    if sample is not None:
        scores = labels is not None and is_regression(label_names)
        classes = labels if labels is not None and not scores else None
        rows, note = draw_sample(data.num_rows, classes, sample, _describe_split(name), scores)
        say(note)
        if rows is not None:
            drawn_from = Counter(labels) if classes is not None else None
            data = data.subset(rows)
            labels = [labels[i] for i in rows] if labels is not None else None
    texts = ["" if t is None else str(t) for t in data.columns[columns.text]]
    pairs = None if columns.pair is None else ["" if t is None else str(t) for t in data.columns[columns.pair]]
    index = data.columns[columns.index] if columns.index and columns.index in data.columns else list(range(len(texts)))
    return TextSplit(name, texts, labels, list(index), pairs, drawn_from)


def _describe_split(name: str) -> str:
    return {"train": "training", "validation": "validation"}.get(name, f"'{name}'")


def draw_sample(num_rows: int, classes: list[int] | None, sample: Sample, what: str,
                scores: bool = False) -> tuple[list[int] | None, str]:
    """The rows `sample` draws from a split of num_rows examples, in the file's order (None: all of them,
    the split being no larger), and the line that says so. Seeded, so every script draws the same rows
    from the same data: the teacher and its students train on one subset, and evaluate.py scores the
    validation examples the runs were validated on. With `classes` (the label ids of a classifier's
    rows) the sample is stratified: each class in proportion to its share of the split, and every
    class at least once when the sample has room for them all. Public data sets are often sorted by
    class, and their first N rows would hold few classes."""
    if sample.size >= num_rows:
        return None, (f"{sample.flag} {sample.size}: the {what} split has {num_rows} examples; using all of them")
    rng = random.Random(sample.seed)
    seed = f"{'fixed ' if sample.fixed else ''}seed {sample.seed}"
    if classes is None:
        rows = sorted(rng.sample(range(num_rows), sample.size))
        how = "not stratified: the labels are scores" if scores else "not stratified: no labels"
    else:
        rows = _stratified(classes, sample.size, rng)
        how = f"stratified by label: {len(set(classes))} classes"
    return rows, f"{sample.flag} {sample.size}: drew {len(rows)} of {num_rows} {what} examples ({seed}, {how})"


def _stratified(classes: list[int], size: int, rng: random.Random) -> list[int]:
    """`size` rows drawn class by class (see draw_sample), sorted. Each class gets one row first when
    there is room for all; the rest is shared out in proportion to what each class has left, the
    remainders going to the largest fractions (ties in an order drawn from rng)."""
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(classes):
        groups.setdefault(label, []).append(row)
    keys = sorted(groups)
    take = dict.fromkeys(keys, 1 if size >= len(keys) else 0)
    left = size - sum(take.values())
    room = {k: len(groups[k]) - take[k] for k in keys}
    total = sum(room.values())
    shares = {k: left * room[k] / total for k in keys}
    for k in keys:
        take[k] += int(shares[k])
    order = keys[:]
    rng.shuffle(order)
    order.sort(key=lambda k: int(shares[k]) - shares[k])  # stable: largest remainder first, shuffled ties
    for k in order[:size - sum(take.values())]:
        take[k] += 1
    return sorted(row for k in keys for row in rng.sample(groups[k], take[k]))


BAD_ROWS_SHOWN = 5  # line numbers an error names; --on_bad_rows warn lists up to BAD_ROWS_LISTED
BAD_ROWS_LISTED = 50
BAD_ROWS_WIDTH = 180  # characters of the bad rows an error names


def drop_bad_rows(raw: RawData, name: str, data: RawSplit, columns: Columns, say=print) -> RawSplit:
    """The split without its bad rows: those the reader could not read (a missing or extra field, a
    repeated header line, a quoted field that swallowed rows, a line that is no JSON object), an empty
    or whitespace-only text, a row with no label in a split whose other rows have one, and a label
    that is nan or inf among numbers (a score). raw.on_bad_rows decides: error (name the file, the
    first lines and the count), warn (drop them and list them) or skip (drop them and say how many).
    Nothing is dropped silently: the count is kept in raw.dropped for metrics.json."""
    problems = list(data.bad)
    empty = {}
    for column in (columns.text, columns.pair):
        if column is not None and column in data.columns:
            for row, value in enumerate(data.columns[column]):
                if value is None or not str(value).strip():
                    empty.setdefault(row, f"empty text in '{column}'")
    labels = data.columns.get(columns.label) if columns.label else None
    if labels is not None and not all(_is_missing(v) for v in labels):
        non_finite = _non_finite_numbers(labels)
        for row, value in enumerate(labels):
            if _is_missing(value):
                empty.setdefault(row, f"no label in '{columns.label}'")
            elif non_finite and _key(value) in non_finite:
                empty.setdefault(row, f"label {clip(value)!r} is not a finite number")
    problems += [(data.line_of(row), why) for row, why in empty.items()]
    raw.dropped[name] = len(problems)
    if not problems:
        return data
    problems.sort()
    where = data.file or f"the '{name}' split of {raw.source}"
    count = f"{len(problems)} bad row{'s' if len(problems) != 1 else ''}"
    if raw.on_bad_rows == "error":
        shown = listed((f"line {line}: {why}" for line, why in problems[:BAD_ROWS_SHOWN]), width=BAD_ROWS_WIDTH,
                       total=len(problems), sep="; ")
        raise UserError(f"{where}: {count} ({shown}); fix the file, or drop them with --on_bad_rows skip (warn "
                        f"lists them)")
    if raw.on_bad_rows == "warn":
        lines = "\n".join(f"  line {line}: {why}" for line, why in problems[:BAD_ROWS_LISTED])
        more = f"\n  ... and {len(problems) - BAD_ROWS_LISTED} more" if len(problems) > BAD_ROWS_LISTED else ""
        say(f"warning: {where}: dropped {count} (--on_bad_rows warn):\n{lines}{more}")
    else:
        say(f"{where}: dropped {count} (--on_bad_rows skip)")
    return data.subset([row for row in range(data.num_rows) if row not in empty])


def _key(value):
    try:
        hash(value)
        return type(value), value
    except TypeError:
        return type(value), repr(value)


def _non_finite_numbers(values: list) -> set:
    """The label values (as _key) that are nan or inf, when every other label is a number: one "nan"
    among scores is a broken row, and must not make every score a class name. Among labels that are
    words, "nan" may be a class of its own and stays one."""
    distinct = [v for v in _distinct(values) if not _is_missing(v)]
    bad = {_key(v) for v in distinct if _is_non_finite(v)}
    if bad and all(_key(v) in bad or _as_number(v) is not None for v in distinct):
        return bad
    return set()


def _is_non_finite(value) -> bool:
    """nan, inf or -inf, as a number or as text ("nan", "-Infinity")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        return not math.isfinite(float(value))
    except (ValueError, OverflowError):
        return False


def carve_validation(raw: RawData, columns: Columns, fraction: float) -> tuple[RawData, str | None]:
    """With a train split and no validation split, hold out `fraction` of train as validation:
    stratified by label where every label has at least two examples, and drawn with a fixed seed,
    so every script holds out the same examples from the same data. Returns the data and a line
    saying what was done (None when nothing was)."""
    if fraction <= 0 or raw.whole or "validation" in raw.splits or "train" not in raw.splits:
        return raw, None
    train = raw.splits["train"]
    n = train.num_rows
    held = max(1, round(fraction * n))
    if n < 2 or held >= n:
        return raw, None
    # scikit-learn takes seconds to import (3.3 s measured on 2 busy cores): only runs that carve a
    # validation split pay for it.
    from sklearn.model_selection import train_test_split

    labels = train.columns.get(columns.label) if columns.label else None
    strata = [str(_label_key(v)) for v in labels] if labels is not None else None  # 1.0 and 1: one class
    stratified = strata is not None and min(strata.count(v) for v in set(strata)) >= 2 and held >= len(set(strata))
    keep, hold = train_test_split(list(range(n)), test_size=held, random_state=CARVE_SEED,
                                  stratify=strata if stratified else None)
    keep, hold = sorted(keep), sorted(hold)  # the file's own order within each part

    held_out = train.subset(hold)
    held_out.bad = []  # the file's unreadable rows are reported once, with train
    splits = {**raw.splits, "train": train.subset(keep), "validation": held_out}
    note = (f"{raw.source} has no validation split: holding out {fraction:.0%} of train ({len(hold)} examples, "
            f"{'stratified by label, ' if stratified else ''}the same ones in every script) as validation; "
            f"--validation_split 0 trains on all of it")
    return replace(raw, splits=splits, carved=fraction), note


def encode_labels(values: list, label_names: list[str], where: str, labels_from: str = "the model",
                  column: str | None = None) -> list[int] | list[float] | None:
    """Label values (ids, id strings or names) -> ids in label_names, numbers compared as numbers (1.0
    is 1); scores (floats) for a regression model. None when every value is missing or -1: an
    unlabeled split, as GLUE's test sets are. Values outside label_names are refused all at once, with
    how many rows carry each."""
    if all(_is_missing(v) for v in values):
        return None
    if is_regression(label_names):
        return _encode_scores(values, where)
    lookup = {name: i for i, name in enumerate(label_names)}

    def label_id(value) -> int | None:
        if isinstance(value, str) and value.strip() in lookup:
            return lookup[value.strip()]
        if _is_int_like(value) and 0 <= int(float(value)) < len(label_names):
            return int(float(value))
        return None

    ids, unknown, decided = [], Counter(), {}
    for row, value in enumerate(values):
        if _is_missing(value):
            raise UserError(f"{where}: row {row} has no label while others do; label every row or none")
        try:  # one decision per distinct value (and type: 1 and True are not one label)
            key = (type(value), value)
            found = decided[key] if key in decided else decided.setdefault(key, label_id(value))
        except TypeError:
            found = label_id(value)
        if found is None:
            unknown[_label_key(value)] += 1
        else:
            ids.append(found)
    if column is not None and column in unknown:
        raise UserError(f"{where}: {unknown[column]} row(s) carry the column's own name '{column}' as a label: a "
                        f"repeated header line; delete it, or pass --on_bad_rows skip to drop it")
    if unknown:
        found = listed((f"'{clip(value)}' ({n} row{'s' if n != 1 else ''})" for value, n in unknown.most_common(SHOWN)),
                       total=len(unknown))
        raise UserError(f"{where} has label(s) {found} that {labels_from} does not have"
                        f"{brief_label_map(label_names)}; fix the data or pass the matching --label_column")
    return ids


def is_regression(label_names: list[str]) -> bool:
    """One output is a regression score (Hugging Face: num_labels == 1), more are classes."""
    return len(label_names) == 1


def has_scores(raw: RawData, columns: Columns) -> bool:
    """Whether the labels are scores for a regression model: every label the label set is read from
    (_label_values) is a number, and at least one is not a whole number (3.8, "2.75"). Labels that
    are all whole numbers stay class ids."""
    return columns.label is not None and _are_scores(_label_values(raw, columns))


def _are_scores(values: list) -> bool:
    numbers = [_as_number(v) for v in _distinct(values)]  # a label column holds few distinct values
    return all(n is not None for n in numbers) and any(not n.is_integer() for n in numbers)


def _classes(names: list[str], source: str) -> list[str]:
    """Class names for a classifier: one alone would make a regression model (num_labels == 1)."""
    if len(names) < 2:
        raise UserError(f"{source} has one class only ({names[0]!r}); a classifier needs two or more, and a model "
                        f"with one output is a regression model, for numeric scores; check --label_column")
    return names


def _as_number(value) -> float | None:
    """A finite number from a numeric value or a numeric string; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _encode_scores(values: list, where: str) -> list[float]:
    scores = []
    for row, value in enumerate(values):
        number = _as_number(value)
        if number is None:
            problem = "has no label while others do" if _is_missing(value) else f"has label {value!r}, not a number"
            raise UserError(f"{where}: row {row} {problem}; a regression model (one output, "
                            f"'{REGRESSION_LABEL}') needs a numeric score on every row")
        # -100 marks an example without a gold score in the training batches (losses.IGNORE_LABEL).
        if number == -100:
            raise UserError(f"{where}: row {row} has score -100, which marks an unlabeled example here; "
                            f"shift or rescale the scores")
        scores.append(number)
    return scores


def check_label_names(data_names: list[str] | None, model_names: list[str], model: str,
                      declared_by: str = "the data") -> None:
    """A model must not be trained or scored against data (or a teacher, `declared_by`) whose label
    order differs from its own."""
    if data_names is None or _is_generic(model_names) or _is_generic(data_names):
        return
    if list(data_names) != list(model_names):
        differ = [i for i, (a, b) in enumerate(zip(data_names, model_names)) if a != b]
        if len(data_names) == len(model_names) and len(data_names) > LABELS_SHOWN:
            # A long map shows its first ids only, which may well agree: name the first id that differs.
            first = differ[0]
            raise UserError(f"label maps differ: id {first} is '{clip(data_names[first])}' in {declared_by} but "
                            f"'{clip(model_names[first])}' in {model} ({len(differ)} of {len(data_names)} ids "
                            f"differ); use data and models with the same labels in the same order")
        raise UserError(
            f"label maps differ: {declared_by} declares {describe_labels(data_names)} but {model} has "
            f"{describe_labels(model_names)}; use data and models with the same labels in the same order"
        )


LABELS_SHOWN = 4  # ids a label map in a message shows


def brief_label_map(names: list[str]) -> str:
    """' {0: negative, 1: positive}' for a message to add, when the map is short enough to help."""
    return f" {describe_labels(names)}" if len(names) <= LABELS_SHOWN else f" ({len(names)} labels)"


def describe_labels(names: list[str]) -> str:
    """A label map as a message shows it: '{0: negative, 1: positive}', or its first ids and how many more."""
    return "{" + listed((f"{i}: {clip(n, 24)}" for i, n in enumerate(names)), LABELS_SHOWN, width=80) + "}"


def _is_generic(names: list[str]) -> bool:
    return all(n == f"LABEL_{i}" for i, n in enumerate(names))


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from a JSON null in a numeric column
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return _int_like(value) and int(float(value)) == -1


def _int_like(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    # "1", " 1 ", "1.0", "1e0": one class, however the file writes it
    number = _as_number(value) if isinstance(value, str) else None
    return number is not None and number.is_integer()


# A label column holds few distinct values in many rows: each value is judged once. typed: 1, 1.0 and
# True are equal keys to a plain dict, but not the same label.
_missing_cached = lru_cache(maxsize=1 << 16, typed=True)(_missing)
_int_like_cached = lru_cache(maxsize=1 << 16, typed=True)(_int_like)


def _is_missing(value) -> bool:
    try:
        return _missing_cached(value)
    except TypeError:  # an unhashable value (a list)
        return _missing(value)


def _is_int_like(value) -> bool:
    try:
        return _int_like_cached(value)
    except TypeError:
        return _int_like(value)


def _label_key(value):
    """A label as one class: integer-valued numbers as int (1.0, "1.0" and "1" are one class), others as text."""
    return int(float(value)) if _is_int_like(value) else str(value).strip()
