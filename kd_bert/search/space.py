"""The space a sweep searches (--search NAME=SPEC ...): each setting a range or a list of choices,
checked against the distillation flags before anything loads, and sampled by an Optuna trial.

    alpha=0.1:1.0            a number between 0.1 and 1.0
    learning_rate=1e-5:3e-4:log   the same on a log scale
    num_train_epochs=1:4     a whole number, for a whole-number flag (LOW:HIGH:int makes one of any)
    augment=0,1,2            one of the choices, each read as the flag reads its text
    student=first_layers:2,teacher_layers:6,bilstm@1e-3
                             the student's kind and size together: KIND or KIND:LAYERS, KIND a value of
                             --student_init or a kind --student_model names (bilstm), LAYERS its
                             --student_layers count; @LR trains that student at its own learning rate
                             (a BiLSTM from scratch wants a higher one than a pretrained transformer)

This module imports no torch or Optuna: a bad space fails before either loads.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass, fields, replace

from ..config import DataConfig, DistillConfig, TrainConfig, short_repr
from ..errors import UserError
from ..registries import student_kinds

FLOAT, INT, CHOICE = "float", "int", "choice"
CONFIGS = (DistillConfig, DataConfig, TrainConfig)  # a trial is a distillation: these flags, and only these
# Flags that say what the sweep reads and writes, or how it compares trials: the same in every trial.
FIXED = {
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "checkpointing_steps", "save_total_limit",
    "data_path", "text_column", "text_pair_column", "label_column", "label_names", "validation_split",
    "selection_split", "max_eval_samples", "on_bad_rows", "teacher_model", "cache_dir", "report_to",
    "compare_no_kd", "transfer_data", "student_tokenizer", "eval_steps", "eval_batch_size", "metric_for_best_model",
    "mixed_precision",
}
STUDENT = "student"  # the setting that picks the student's kind and size together
STUDENT_FLAGS = ("student_init", "student_model", "student_layers")  # what it sets (and learning_rate, with @LR)
# Flags of the scripts that are no setting of a distillation: how the script reports, and where its flags come from.
SCRIPT_FLAGS = {"debug": "how the script reports errors", "quiet": "how much the script prints",
                "verbose": "how much the script prints", "config": "where the script reads its flags",
                "help": "what the script prints instead of running"}


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (kind FLOAT or INT, `log` for a log scale) or CHOICE of `choices`."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial):
        """This setting's value for an Optuna trial."""
        if self.kind == FLOAT:
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == INT:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> str:
        if self.kind == CHOICE:
            return f"{self.name}={','.join(map(str, self.choices))}"
        return f"{self.name}={self.low:g}:{self.high:g}" + (":log" if self.log else ":int" if self.kind == INT else "")

    def values_to_check(self) -> list:
        return list(self.choices) if self.kind == CHOICE else [self.low, self.high]

    def values(self) -> list | None:
        """Every value it can take, when they are few enough to list (choices, whole numbers); None for a
        range of numbers."""
        if self.kind == CHOICE:
            return list(self.choices)
        if self.kind == INT:
            return list(range(int(self.low), int(self.high) + 1))
        return None


def size_of(dimensions: list[Dimension]) -> int | None:
    """How many distinct settings the space holds; None when a range of numbers makes them endless."""
    counts = [d.values() for d in dimensions]
    return None if any(c is None for c in counts) else math.prod(len(c) for c in counts)


def every_setting(dimensions: list[Dimension]):
    """Each setting of a space that size_of counts, as {name: value}."""
    names = [d.name for d in dimensions]
    for values in itertools.product(*(d.values() for d in dimensions)):
        yield dict(zip(names, values))


def _flag_fields() -> dict:
    return {f.name: f for config in CONFIGS for f in fields(config) if "help" in f.metadata}


def parse_space(specs: list[str]) -> list[Dimension]:
    """The dimensions of --search, each NAME=SPEC read against its flag; a setting named twice, a flag the
    distillation has not, or one that must stay fixed is refused by name."""
    known = _flag_fields()
    dimensions: dict[str, Dimension] = {}
    for spec in specs:
        name, equals, value = spec.partition("=")
        name = name.strip().removeprefix("--")
        if not equals or not name or not value.strip():
            raise UserError(f"--search {short_repr(spec)}: write NAME=LOW:HIGH, NAME=LOW:HIGH:log or NAME=A,B,C, "
                            f"e.g. alpha=0.1:1.0")
        if name == STUDENT:
            if name in dimensions:
                raise UserError(f"--search names {name} twice; give it once")
            dimensions[name] = _student_dimension(value.strip(), spec)
            continue
        if name in SCRIPT_FLAGS:
            raise UserError(f"--search {name}: --{name} says {SCRIPT_FLAGS[name]}, not how a trial distills, so it "
                            f"cannot be searched; pass --{name} to set it for the whole sweep")
        if name not in known:
            raise UserError(f"--search {short_repr(spec)}: {name} is no flag of distilled-bert.py; any of its "
                            f"settings can be searched, e.g. alpha, temperature, learning_rate, augment")
        if name in FIXED:
            raise UserError(f"--search {name}: this flag says what the sweep reads or writes, or how it compares "
                            f"trials, so it is the same in every trial; pass --{name} to set it")
        if name in dimensions:
            raise UserError(f"--search names {name} twice; give it once")
        dimensions[name] = _dimension(name, value.strip(), known[name], spec)
    both = [name for name in STUDENT_FLAGS if name in dimensions]
    if STUDENT in dimensions and "learning_rate" in dimensions and "@" in "".join(dimensions[STUDENT].choices):
        both.append("learning_rate")
    if STUDENT in dimensions and both:
        raise UserError(f"--search student= sets --{both[0]} in every trial; search the student with student= alone")
    return list(dimensions.values())


def _student_dimension(value: str, spec: str) -> Dimension:
    """student=KIND[:LAYERS],...: each choice a kind of student, with the layer count of a kind that keeps layers."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    kinds = ", ".join(student_kinds.KINDS)
    for item in items:
        student, at, rate = item.partition("@")
        name, colon, count = student.partition(":")
        kind = student_kinds.KINDS.get(name)
        if kind is None:
            raise UserError(f"--search {short_repr(spec)}: {name} is no kind of student; give KIND or KIND:LAYERS, "
                            f"KIND one of {kinds}, e.g. student=first_layers:2,first_layers:4,bilstm")
        if colon and not kind.takes_layers:
            raise UserError(f"--search {short_repr(spec)}: a {name} student keeps no layers of another model; give "
                            f"{name} alone")
        if colon and not (count.isdigit() and int(count) >= 1):
            raise UserError(f"--search {short_repr(spec)}: {item}: LAYERS is how many layers the student keeps, a "
                            f"whole number of at least 1")
        if at and not _positive(rate):
            raise UserError(f"--search {short_repr(spec)}: {item}: @LR is the student's learning rate, a number above "
                            f"0, e.g. bilstm@1e-3")
    if len(items) < 2:
        raise UserError(f"--search {short_repr(spec)}: give at least two students, e.g. "
                        f"student=first_layers:2,first_layers:4,bilstm; to fix the student, pass its flags")
    if len(set(items)) < len(items):
        raise UserError(f"--search {short_repr(spec)}: a choice is given twice")
    return Dimension(STUDENT, CHOICE, choices=tuple(items))


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def student_flags(choice: str, distill: DistillConfig) -> dict:
    """The distilled-bert.py flags of a student= choice."""
    student, at, rate = choice.partition("@")
    name, _, count = student.partition(":")
    kind = student_kinds.KINDS[name]
    own_rate = {"learning_rate": float(rate)} if at else {}
    if kind.chosen_by == student_kinds.STUDENT_MODEL:
        return {"student_model": kind.name, "student_init": student_kinds.INIT_CHOICES[0], "student_layers": None,
                **own_rate}
    if kind.starts_from == "student_model" and distill.student_model in student_kinds.BUILT_FROM_NOTHING:
        raise UserError(f"a {name} student starts from --student_model, which names a {distill.student_model}; pass "
                        f"--student_model with the checkpoint it starts from")
    return {"student_init": kind.name, "student_layers": count or None, **own_rate}


def _dimension(name: str, value: str, f, spec: str) -> Dimension:
    meta = f.metadata["argparse"]
    convert = meta.get("type")
    boolean = meta.get("action") in ("store_true", argparse.BooleanOptionalAction)
    if ":" not in value:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if len(items) < 2:
            raise UserError(f"--search {short_repr(spec)}: give a range LOW:HIGH or at least two choices A,B; to fix "
                            f"{name} for every trial, pass --{name} {value}")
        choices = tuple(_choice(name, item, convert, boolean, meta.get("choices")) for item in items)
        if len(set(choices)) < len(choices):
            raise UserError(f"--search {short_repr(spec)}: a choice is given twice")
        return Dimension(name, CHOICE, choices=choices)
    parts = [part.strip() for part in value.split(":")]
    scale = parts[2] if len(parts) == 3 else None
    if len(parts) not in (2, 3) or scale not in (None, "log", "int"):
        raise UserError(f"--search {short_repr(spec)}: a range is LOW:HIGH, LOW:HIGH:log or LOW:HIGH:int")
    if convert not in (int, float):
        raise UserError(f"--search {short_repr(spec)}: --{name} is not a number; give its choices, e.g. "
                        f"{name}=A,B")
    whole = convert is int or scale == "int"
    try:
        low, high = (int(p) if whole else float(p) for p in parts[:2])
    except ValueError:
        expected = "whole numbers" if whole else "numbers"
        raise UserError(f"--search {short_repr(spec)}: LOW and HIGH must be {expected}") from None
    if not low < high:
        raise UserError(f"--search {short_repr(spec)}: LOW must be below HIGH")
    if scale == "log" and low <= 0:
        raise UserError(f"--search {short_repr(spec)}: a log scale needs LOW above 0")
    return Dimension(name, INT if whole else FLOAT, low, high, log=scale == "log")


def _choice(name: str, text: str, convert, boolean: bool, choices):
    if boolean:
        if text.lower() not in ("true", "false"):
            raise UserError(f"--search {name}: --{name} is on or off; its choices are true,false (got {text})")
        return text.lower() == "true"
    try:
        value = convert(text) if convert in (int, float) else text
    except ValueError:
        raise UserError(f"--search {name}={text}: --{name} takes {'whole numbers' if convert is int else 'numbers'}") \
            from None
    if choices is not None and value not in choices:
        raise UserError(f"--search {name}: {text} is not one of --{name}'s choices ({', '.join(map(str, choices))})")
    return value


def apply(params: dict, distill: DistillConfig, data: DataConfig, train: TrainConfig):
    """The three configs of a trial: the sweep's own with this trial's settings; each config checks
    them as it does any value (replace re-runs its checks), so an out-of-range value is refused by
    the message its flag gives."""
    if STUDENT in params:
        params = {**student_flags(params[STUDENT], distill), **{k: v for k, v in params.items() if k != STUDENT}}
    configs = []
    for config in (distill, data, train):
        own = {name: value for name, value in params.items() if name in {f.name for f in fields(config)}}
        configs.append(replace(config, **own) if own else config)
    return tuple(configs)


def check_space(dimensions: list[Dimension], distill: DistillConfig, data: DataConfig, train: TrainConfig,
                check_plan) -> None:
    """Every end of every range and every choice is a value its flag takes, with the other flags as
    given: a space that would fail in trial 9 fails now. check_plan(distill, train) refuses flag
    combinations that cannot work (the distillation's own plan)."""
    for dim in dimensions:
        for value in dim.values_to_check():
            try:
                trial = apply({dim.name: value}, distill, data, train)
                check_plan(trial[0], trial[2])
            except UserError as exc:
                raise UserError(f"--search {dim.describe()}: with {dim.name} {value}: {exc}") from None
