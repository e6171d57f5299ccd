"""Label values one by one, as files hold them: missing or not, whole numbers, numbers; and the two ways
a task reads a column of them, as class ids (classification) or as scores (regression). Each Task picks
its reader (task.py), so this module knows no task kind and imports no task.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

from ..errors import SHOWN, UserError, clip, listed

LABELS_SHOWN = 4  # ids a label map in a message shows
# A regression task (STS-B-style similarity scores) has one output, named so; Hugging Face's own
# convention is that num_labels == 1 means regression.
REGRESSION_LABEL = "score"


def class_ids(values: list, label_names: list[str], where: str, labels_from: str = "the model",
              column: str | None = None) -> list[int]:
    """Label values (ids, id strings or names) -> ids in label_names, numbers compared as numbers (1.0
    is 1). Values outside label_names are refused all at once, with how many rows carry each."""
    lookup = {name: i for i, name in enumerate(label_names)}

    def label_id(value) -> int | None:
        if isinstance(value, str) and value.strip() in lookup:
            return lookup[value.strip()]
        if is_int_like(value) and 0 <= int(float(value)) < len(label_names):
            return int(float(value))
        return None

    ids, unknown, decided = [], Counter(), {}
    for row, value in enumerate(values):
        if is_missing(value):
            raise UserError(f"{where}: row {row} has no label while others do; label every row or none")
        try:  # one decision per distinct value (and type: 1 and True are not one label)
            key = (type(value), value)
            found = decided[key] if key in decided else decided.setdefault(key, label_id(value))
        except TypeError:
            found = label_id(value)
        if found is None:
            unknown[label_key(value)] += 1
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


def scores(values: list, where: str, label: str) -> list[float]:
    """Label values -> the scores of a regression model, whose one output is named `label`."""
    numbers = []
    for row, value in enumerate(values):
        number = as_number(value)
        if number is None:
            problem = "has no label while others do" if is_missing(value) else f"has label {value!r}, not a number"
            raise UserError(f"{where}: row {row} {problem}; a regression model (one output, "
                            f"'{label}') needs a numeric score on every row")
        # -100 marks an example without a gold score in the training batches (losses.IGNORE_LABEL).
        if number == -100:
            raise UserError(f"{where}: row {row} has score -100, which marks an unlabeled example here; "
                            f"shift or rescale the scores")
        numbers.append(number)
    return numbers


def as_number(value) -> float | None:
    """A finite number from a numeric value or a numeric string; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def brief_label_map(names: list[str]) -> str:
    """' {0: negative, 1: positive}' for a message to add, when the map is short enough to help."""
    return f" {describe_labels(names)}" if len(names) <= LABELS_SHOWN else f" ({len(names)} labels)"


def describe_labels(names: list[str]) -> str:
    """A label map as a message shows it: '{0: negative, 1: positive}', or its first ids and how many more."""
    return "{" + listed((f"{i}: {clip(n, 24)}" for i, n in enumerate(names)), LABELS_SHOWN, width=80) + "}"


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
    number = as_number(value) if isinstance(value, str) else None
    return number is not None and number.is_integer()


# A label column holds few distinct values in many rows: each value is judged once. typed: 1, 1.0 and
# True are equal keys to a plain dict, but not the same label.
_missing_cached = lru_cache(maxsize=1 << 16, typed=True)(_missing)

_int_like_cached = lru_cache(maxsize=1 << 16, typed=True)(_int_like)


def is_missing(value) -> bool:
    try:
        return _missing_cached(value)
    except TypeError:  # an unhashable value (a list)
        return _missing(value)


def is_int_like(value) -> bool:
    try:
        return _int_like_cached(value)
    except TypeError:
        return _int_like(value)


def label_key(value):
    """A label as one class: integer-valued numbers as int (1.0, "1.0" and "1" are one class), others as text."""
    return int(float(value)) if is_int_like(value) else str(value).strip()
