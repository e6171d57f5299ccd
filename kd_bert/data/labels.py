"""Label names and label ids: where a classifier's label set comes from, labels mapped to ids (or
scores for a regression task), and label maps checked against each other.

Label names come from, in order: --label_names, a ClassLabel feature, a labels.txt beside the data
files (one name per line, line i is id i), the sorted set of string labels, or LABEL_0..LABEL_{n-1}
for bare integers. Numeric labels that are not all whole numbers (STS-B's similarity scores) make a
regression task: one label, REGRESSION_LABEL.
"""

from __future__ import annotations

import math

from ..errors import UserError, clip
from .label_values import (
    LABELS_SHOWN,
    REGRESSION_LABEL,
    as_number,
    describe_labels,
    is_int_like,
    is_missing,
    label_key,
)
from .read import Columns, RawData, RawSplit


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
    if all(is_int_like(v) for v in values):
        top = max(int(float(v)) for v in _distinct(values))
        return [f"LABEL_{i}" for i in range(max(top + 1, 2))]
    return _classes(sorted({str(label_key(v)) for v in _distinct(values)}), raw.source)


def _label_values(raw: RawData, columns: Columns) -> list:
    """The labels the label set is read from. The training split alone says which classes there are (a
    label found only in a validation or test split was never taught, and to_text_split refuses it by
    name); every split's when the training split has none. Neither a missing label nor a nan or inf
    among numbers (see _non_finite_numbers) says anything of the label set: those are bad rows."""
    train = raw.splits.get("train")
    splits = [train] if train is not None and _labeled(train, columns) else list(raw.splits.values())
    values = [v for s in splits for v in s.columns.get(columns.label, []) if not is_missing(v)]
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
    return columns.label is not None and not all(is_missing(v) for v in split.columns.get(columns.label, []))


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
    distinct = [v for v in _distinct(values) if not is_missing(v)]
    bad = {_key(v) for v in distinct if _is_non_finite(v)}
    if bad and all(_key(v) in bad or as_number(v) is not None for v in distinct):
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


def encode_labels(values: list, task, where: str, labels_from: str = "the model",
                  column: str | None = None) -> list[int] | list[float] | None:
    """Label values read as the run's task (a task.Task, passed in: data/ sits below it) reads them
    (Task.encode_labels): class ids for a classifier, scores for a regression model. None when every value
    is missing or -1: an unlabeled split, as GLUE's test sets are."""
    if all(is_missing(v) for v in values):
        return None
    return task.encode_labels(values, where, labels_from, column)


def has_scores(raw: RawData, columns: Columns) -> bool:
    """Whether the labels are scores for a regression model: every label the label set is read from
    (_label_values) is a number, and at least one is not a whole number (3.8, "2.75"). Labels that
    are all whole numbers stay class ids."""
    return columns.label is not None and _are_scores(_label_values(raw, columns))


def _are_scores(values: list) -> bool:
    numbers = [as_number(v) for v in _distinct(values)]  # a label column holds few distinct values
    return all(n is not None for n in numbers) and any(not n.is_integer() for n in numbers)


def _classes(names: list[str], source: str) -> list[str]:
    """Class names for a classifier: one alone would make a regression model (num_labels == 1)."""
    if len(names) < 2:
        raise UserError(f"{source} has one class only ({names[0]!r}); a classifier needs two or more, and a model "
                        f"with one output is a regression model, for numeric scores; check --label_column")
    return names


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


def _is_generic(names: list[str]) -> bool:
    return all(n == f"LABEL_{i}" for i, n in enumerate(names))
