"""The file formats a --data_path may hold, each declared once, and their readers.

FORMATS is the one table of them: a format is its file extension and the function that reads such a
file into columns, with each row's line and the rows it cannot read (bad rows, see
splits.drop_bad_rows). What files a folder's splits may be, the refusal of any other file type, the
messages that list the formats and --data_path's help all come from it, and a file is read by its
format's reader, never by a fallback: an extension cannot be listed without a reader. Adding a format
is a reader and one entry in FORMATS (see docs/architecture.md).

This module imports no torch and nothing above it: the configs' help is built from it.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError, clip, listed

FIELD_LIMIT = 1 << 24  # characters in one CSV/TSV field: far beyond any text a model reads, and still bounded


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


def read_tsv(path: Path) -> RawSplit:
    """GLUE's TSVs are not quoted (sentences contain bare quotes), so TSV is read with no quote handling at all."""
    return _read_delimited(path, "\t", csv.QUOTE_NONE)


def read_csv(path: Path) -> RawSplit:
    """CSV follows the usual quoting rules (commas and line breaks inside quotes)."""
    return _read_delimited(path, ",", csv.QUOTE_MINIMAL)


def read_json(path: Path) -> RawSplit:
    return _read_json(path, array=True)


def read_jsonl(path: Path) -> RawSplit:
    return _read_json(path, array=False)


def read_parquet(path: Path) -> RawSplit:
    import pyarrow.parquet as pq  # only for .parquet files

    table = pq.read_table(path)
    _refuse_repeated_columns(path, table.column_names)
    return named_columns(RawSplit(table.to_pydict(), file=str(path)))


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


def _read_delimited(path: Path, delimiter: str, quoting: int) -> RawSplit:
    """Rows of a CSV or TSV file with the line each starts on. Blank lines are skipped, whatever the
    line ends; "utf-8-sig" drops a byte-order mark, which would otherwise be glued to the first column's
    name. A row whose field count differs from the header's, a repeated header line, and a quoted
    field that swallowed rows of the file (see _without_swallowed_rows) are recorded as bad rows, not read."""
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
            raise UserError(f"{path}, line {reader.line_num}: {exc}; check that it is a valid "
                            f"{path.suffix.lower()[1:]} file") from None
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


def _read_json(path: Path, array: bool) -> RawSplit:
    """A .json list of objects (`array`), or one object per line (.jsonl, or a .json written so). A line
    that is not a JSON object is a bad row, named by its line in the file."""
    text = read_text(path, str(path))
    lines, bad = None, []
    if array and text.lstrip().startswith("["):
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
    return named_columns(RawSplit({name: [r.get(name) for r in records] for name in names}, file=str(path), lines=lines,
                           bad=bad))


def named_columns(split: RawSplit) -> RawSplit:
    """Column names without a byte-order mark, which some tools write into a JSON key or parquet schema."""
    split.columns = {name.lstrip("\ufeff"): values for name, values in split.columns.items()}
    return split


@dataclass(frozen=True)
class Format:
    extension: str  # how a file of this format is named, lower case with its dot: ".tsv"
    read: Callable[[Path], RawSplit]  # the file's rows as columns (RawSplit.file, .lines and .bad filled in)

    def __post_init__(self) -> None:
        if not (self.extension.startswith(".") and self.extension == self.extension.lower()):
            raise ValueError(f"a format's extension is lower case with its dot, like .tsv (got {self.extension!r})")
        if not callable(self.read):
            raise TypeError(f"the {self.extension} format needs a reader, a function of the file's path")


FORMATS = (
    Format(".tsv", read_tsv),
    Format(".csv", read_csv),
    Format(".json", read_json),
    Format(".jsonl", read_jsonl),
    Format(".parquet", read_parquet),
)
BY_EXTENSION = {fmt.extension: fmt for fmt in FORMATS}
EXTENSIONS = tuple(BY_EXTENSION)


def is_data_file(path: Path) -> bool:
    return path.suffix.lower() in BY_EXTENSION


def read_file(path: Path) -> RawSplit:
    """A data file read by its format's reader; every error it raises becomes one UserError naming the file."""
    ext = path.suffix.lower()
    read = BY_EXTENSION[ext].read  # the callers read only files of a declared format (is_data_file)
    try:
        return read(path)
    except UserError:
        raise
    except UnicodeDecodeError:
        raise not_utf8(path, str(path)) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {clip(exc, 160)}; check that it is a valid {ext[1:]} file") from exc
    except Exception as exc:  # pyarrow raises its own error types
        raise UserError(f"cannot read {path}: {clip(exc, 160)}; check that it is a valid {ext[1:]} file") from exc
