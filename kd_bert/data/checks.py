"""Checks of the splits a model trains and is validated on, run before anything is trained: labels
that do not add up stop the run by name; what is merely worth knowing (a rare class, validation
sentences that also appear in train) is said and counted for metrics.json."""

from __future__ import annotations

import logging
from collections import Counter

from ..errors import SHOWN, UserError, clip, listed
from .label_values import brief_label_map
from .read import TextSplit

log = logging.getLogger(__name__)

FEW_EXAMPLES = 5  # a class with fewer training examples than this is warned about


def check_training_data(train: TextSplit, validation: TextSplit | None, label_names: list[str]) -> dict:
    """Refuse a training split with one class, and a validation split with a class the training split
    never has (the whole split, when --max_train_samples drew from it: a class the sample lacks is
    only warned about); warn about classes with fewer than FEW_EXAMPLES training examples and count
    validation examples whose text also appears in train (leakage inflates the validation score).
    Returns what metrics.json records of it."""
    report: dict = {}
    if train.labels is not None and len(label_names) > 1:
        counts = Counter(train.labels)
        taught = train.drawn_from or counts  # the classes of the whole training split
        if len(counts) == 1:
            (only, n), = counts.items()
            hint = ", or --max_train_samples, too small to draw two classes" if train.drawn_from else ""
            raise UserError(f"the '{train.name}' split has one class only ('{clip(label_names[only])}', {n} examples); "
                            f"a classifier needs examples of at least two. Check --label_column and the file{hint}")
        left_out = [i for i in sorted(taught) if i not in counts]
        if left_out:
            names = listed(f"'{clip(label_names[i], 24)}'" for i in left_out)
            log.warning(f"the --max_train_samples sample holds no example of {len(left_out)} of the {len(taught)} "
                f"classes in the '{train.name}' split ({names}); the model cannot learn them. Raise "
                f"--max_train_samples to at least {len(taught)}")
            report["classes_missing_from_sample"] = len(left_out)
        rare = {label_names[i]: counts.get(i, 0) for i in range(len(label_names))
                if counts.get(i, 0) < FEW_EXAMPLES and i not in left_out}
        if rare:
            shown = listed(f"'{clip(name, 24)}' ({n})" for name, n in rare.items())
            log.warning(f"{len(rare)} class(es) have fewer than {FEW_EXAMPLES} training examples: {shown}; "
                f"the model can hardly learn them")
            report["rare_classes"] = rare
        if validation is not None and validation.labels is not None:
            unseen = Counter(label for label in validation.labels if label not in taught)
            if unseen:
                found = listed((f"'{clip(label_names[i], 24)}' ({n} row{'s' if n != 1 else ''})"
                                for i, n in unseen.most_common(SHOWN)), total=len(unseen))
                raise UserError(f"the '{validation.name}' split has label(s) {found} that the '{train.name}' split "
                                f"never has{brief_label_map(label_names)}: no training example teaches them. Fix the "
                                f"data, or move examples of those classes into the training split")
    if validation is not None:
        seen = set(_examples(train))
        leaked = sum(example in seen for example in _examples(validation))
        if leaked:
            log.info(f"note: {leaked} of {len(validation)} '{validation.name}' examples also appear verbatim in the "
                f"'{train.name}' split; the validation score overstates how the model does on new text")
        report["validation_in_train"] = leaked
    return report


def _examples(split: TextSplit) -> list:
    return list(zip(split.texts, split.pairs)) if split.pairs is not None else split.texts
