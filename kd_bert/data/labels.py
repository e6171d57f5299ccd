"""Label names and label ids: where a classifier's label set comes from, labels mapped to ids (or
scores for a regression task), and label maps checked against each other.

Label names come from, in order: --label_names, a ClassLabel feature, a labels.txt beside the data
files (one name per line, line i is id i), the sorted set of string labels, or LABEL_0..LABEL_{n-1}
for bare integers. Numeric labels that are not all whole numbers (STS-B's similarity scores) make a
regression task: one label, REGRESSION_LABEL.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

from ..errors import SHOWN, UserError, clip, listed
from ..task import REGRESSION_LABEL, Task
from .read import Columns, RawData, RawSplit

# A regression task (STS-B-style similarity scores) has one output, named so; Hugging Face's own
# convention is that num_labels == 1 means regression.


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


def encode_labels(values: list, label_names: list[str], where: str, labels_from: str = "the model",
                  column: str | None = None) -> list[int] | list[float] | None:
    """Label values (ids, id strings or names) -> ids in label_names, numbers compared as numbers (1.0
    is 1); scores (floats) for a regression model. None when every value is missing or -1: an
    unlabeled split, as GLUE's test sets are. Values outside label_names are refused all at once, with
    how many rows carry each."""
    if all(_is_missing(v) for v in values):
        return None
    if Task.of(label_names).regression:
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
