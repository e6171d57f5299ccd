"""From raw columns to what the models see: the text, label and index columns picked, bad rows
dropped (--on_bad_rows), a validation split held out when the data has none (--validation_split),
seeded samples drawn (--max_train_samples, --max_eval_samples), and unlabeled transfer texts read.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import EVAL_SAMPLE_SEED, DataConfig
from ..errors import UserError, clip, listed
from ..registries.formats import LINE_BREAK, read_text
from .label_values import is_int_like, is_missing, label_key
from .labels import _key, _non_finite_numbers, encode_labels
from .read import (
    INDEX_COLUMN_NAMES,
    LABEL_COLUMN_NAMES,
    PAIR_COLUMN_NAMES,
    TEXT_COLUMN_NAMES,
    TRANSFER_FLAG,
    Columns,
    RawData,
    RawSplit,
    TextSplit,
    get_split,
    load_raw,
    normalize_split,
)

log = logging.getLogger(__name__)

CARVE_SEED = 42  # the held-out validation examples are the same in every script and every run


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


def load_data(data: DataConfig, *, whole_lone_file: bool = False) -> tuple[RawData, Columns]:
    """--data_path read, its columns picked from the column flags, and a validation split carved
    from train when the data has none (--validation_split). A lone file whose name is no split name
    (reviews.csv) is a train split like a folder's only train file, and is carved the same way, unless
    `whole_lone_file`: evaluate.py scores such a file whole when its model was not trained on it."""
    raw = replace(load_raw(data.data_path), on_bad_rows=data.on_bad_rows)
    columns = resolve_columns(raw, data.text_column, data.label_column, data.text_pair_column)
    if raw.lone_file and whole_lone_file:
        return raw, columns
    raw, note = carve_validation(raw, columns, data.validation_split)
    if note:
        log.info(note)
    return raw, columns


def load_unlabeled(path: str, columns: Columns, on_bad_rows: str) -> TextSplit:
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
    split = to_text_split(raw, name, found, None, need_labels=False, required_by="")
    return TextSplit("transfer", split.texts, None, split.index, split.pairs)


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
            return len(strings) == len(values[:200]) and any(not is_int_like(v) for v in strings)
    return False


def to_text_split(
    raw: RawData, split: str, columns: Columns, task, *, need_labels: bool, required_by: str,
    sample: Sample | None = None, labels_from: str = "the model",
) -> TextSplit:
    """The split's texts, label ids and example ids, without its bad rows (see drop_bad_rows); with
    `sample`, only the examples it draws (see draw_sample). `task` is the run's task.Task, passed in (data/ sits
    below it): it reads the labels and says whether a sample is stratified; None for a split whose labels are
    not read. `labels_from` names where the task's label names came from, for messages."""
    data = get_split(raw, split, required_by=required_by)
    name = normalize_split(split) if normalize_split(split) in raw.splits else split
    data = drop_bad_rows(raw, name, data, columns)
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
        labels = encode_labels(data.columns[columns.label], task, f"the '{name}' split of {raw.source}",
                               labels_from, columns.label)
    if labels is None and need_labels:
        raise UserError(
            f"the '{name}' split of {raw.source} has no labels (columns: {listed(data.columns)}); "
            f"pass --label_column naming the column that holds them"
        )
    drawn_from = None
    if sample is not None:
        classes = labels if labels is not None and task.stratified else None
        why = "no labels" if labels is None else task.not_stratified_because
        rows, note = draw_sample(data.num_rows, classes, sample, _describe_split(name), why)
        log.info(note)
        if rows is not None:
            drawn_from = Counter(labels) if classes is not None else None
            data = data.subset(rows)
            labels = [labels[i] for i in rows] if labels is not None else None
    texts = ["" if t is None else str(t) for t in data.columns[columns.text]]
    pairs = None if columns.pair is None else ["" if t is None else str(t) for t in data.columns[columns.pair]]
    index = data.columns[columns.index] if columns.index and columns.index in data.columns else list(range(len(texts)))
    log.debug(_split_detail(name, raw.source, columns, texts, labels, task, sample is not None and drawn_from))
    return TextSplit(name, texts, labels, list(index), pairs, drawn_from)


def _split_detail(name: str, source: str, columns: Columns, texts: list[str], labels, task,
                  sampled) -> str:
    """--verbose: what a split holds once read (and sampled): its columns, size, labels and first text."""
    counts = "no labels" if labels is None else task.summarize_labels(labels)
    pair = f" + {columns.pair}" if columns.pair else ""
    return (f"'{name}' of {source}: {len(texts)} examples{' (sampled)' if sampled else ''}, text column "
            f"{columns.text}{pair}, label column {columns.label}; {counts}; first text {texts[0][:60]!r}")


def _describe_split(name: str) -> str:
    return {"train": "training", "validation": "validation"}.get(name, f"'{name}'")


def draw_sample(num_rows: int, classes: list[int] | None, sample: Sample, what: str,
                unstratified: str = "no labels") -> tuple[list[int] | None, str]:
    """The rows `sample` draws from a split of num_rows examples, in the file's order (None: all of them,
    the split being no larger), and the line that says so. Seeded, so every script draws the same rows
    from the same data: the teacher and its students train on one subset, and evaluate.py scores the
    validation examples the runs were validated on. With `classes` (the label ids of a classifier's
    rows) the sample is stratified: each class in proportion to its share of the split, and every
    class at least once when the sample has room for them all. Public data sets are often sorted by
    class, and their first N rows would hold few classes. `unstratified` says why a sample without
    classes is not stratified."""
    if sample.size >= num_rows:
        return None, (f"{sample.flag} {sample.size}: the {what} split has {num_rows} examples; using all of them")
    rng = random.Random(sample.seed)
    seed = f"{'fixed ' if sample.fixed else ''}seed {sample.seed}"
    if classes is None:
        rows = sorted(rng.sample(range(num_rows), sample.size))
        how = f"not stratified: {unstratified}"
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


def drop_bad_rows(raw: RawData, name: str, data: RawSplit, columns: Columns) -> RawSplit:
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
    if labels is not None and not all(is_missing(v) for v in labels):
        non_finite = _non_finite_numbers(labels)
        for row, value in enumerate(labels):
            if is_missing(value):
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
        log.warning(f"{where}: dropped {count} (--on_bad_rows warn):\n{lines}{more}")
    else:
        log.info(f"{where}: dropped {count} (--on_bad_rows skip)")
    return data.subset([row for row in range(data.num_rows) if row not in empty])


def carve_validation(raw: RawData, columns: Columns, fraction: float) -> tuple[RawData, str | None]:
    """With a train split and no validation split, hold out `fraction` of train as validation:
    stratified by label where every label has at least two examples, and drawn with a fixed seed,
    so every script holds out the same examples from the same data. Returns the data and a line
    saying what was done (None when nothing was)."""
    if fraction <= 0 or "validation" in raw.splits or "train" not in raw.splits:
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
    strata = [str(label_key(v)) for v in labels] if labels is not None else None  # 1.0 and 1: one class
    stratified = strata is not None and min(strata.count(v) for v in set(strata)) >= 2 and held >= len(set(strata))
    keep, hold = train_test_split(list(range(n)), test_size=held, random_state=CARVE_SEED,
                                  stratify=strata if stratified else None)
    keep, hold = sorted(keep), sorted(hold)  # the file's own order within each part

    held_out = train.subset(hold)
    held_out.bad = []  # the file's unreadable rows are reported once, with train
    splits = {**raw.splits, "train": train.subset(keep), "validation": held_out}
    of = "its examples" if raw.lone_file else "train"  # a lone file: train is all it has
    note = (f"{raw.source} has no validation split: holding out {fraction:.0%} of {of} ({len(hold)} examples, "
            f"{'stratified by label, ' if stratified else ''}the same ones in every script) as validation; "
            f"--validation_split 0 trains on all of it")
    return replace(raw, splits=splits, carved=fraction), note


def carve_selection(split: TextSplit, fraction: float, classes: bool) -> tuple[TextSplit, TextSplit, str]:
    """--selection_split: `fraction` of a labeled training split held out as the split that picks the
    kept model, so that the validation split, scored once afterwards, picked nothing. Stratified for a
    classifier (`classes`), drawn with the fixed CARVE_SEED: every run of one data set, and every trial
    of a sweep, holds out the same examples whatever its --seed. Returns the rest, the selection split
    and the line that says so."""
    if split.labels is None:
        raise UserError("--selection_split holds out labeled training examples to pick the kept model by, and the "
                        "training split has no labels; pass --selection_split 0")
    n = len(split)
    held = round(fraction * n)
    if held < 1 or held >= n:
        raise UserError(f"--selection_split {fraction} holds out {held} of the {n} training examples; give a "
                        f"fraction that leaves at least one example on each side")
    rng = random.Random(CARVE_SEED)
    hold = _stratified(list(split.labels), held, rng) if classes else sorted(rng.sample(range(n), held))
    held_rows = set(hold)
    keep = [row for row in range(n) if row not in held_rows]

    def part(name: str, rows: list[int], drawn_from) -> TextSplit:
        return TextSplit(name, [split.texts[i] for i in rows], [split.labels[i] for i in rows],
                         [split.index[i] for i in rows] if split.index else [],
                         None if split.pairs is None else [split.pairs[i] for i in rows], drawn_from)

    rest = part(split.name, keep, split.drawn_from)
    how = "stratified by label, " if classes else ""
    note = (f"--selection_split {fraction}: {held} of the {n} training examples ({how}fixed seed {CARVE_SEED}) pick "
            f"the kept model; {len(keep)} train it, and the validation split is scored once at the end")
    return rest, part("selection", hold, None), note
