"""The four commands, each a parser and a main: run by the scripts (`python distilled-bert.py ...`) and by the
installed command (`kd-bert distill ...`), which share their flags and their --help.

A command's main builds its configs from the flags first (each checks itself, before torch loads: a bad
value fails at once, and --help answers at once), then runs its job.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from . import cli
from .config import (
    STUDENT_LEARNING_RATE,
    TEACHER_LEARNING_RATE,
    DataConfig,
    DistillConfig,
    EvalConfig,
    SweepConfig,
    TrainConfig,
)


@dataclass(frozen=True)
class Command:
    name: str  # the installed command's subcommand: kd-bert NAME
    script: str  # the script that runs it: python SCRIPT
    description: str
    parser: Callable[[str | None], argparse.ArgumentParser]  # (prog) -> the parser
    main: Callable[[argparse.Namespace], None]


def teacher_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=TEACHER.description)
    parser.add_argument("--model_name_or_path", default="bert-large-uncased",
                        help="hub id or local model folder to fine-tune (default: %(default)s)")
    cli.add_arguments(parser, DataConfig, TrainConfig, defaults={"learning_rate": TEACHER_LEARNING_RATE})
    cli.add_debug_arg(parser)
    return parser


def teacher_main(flags: argparse.Namespace) -> None:
    data, train = DataConfig.from_flags(flags), TrainConfig.from_flags(flags)
    from .jobs.teacher import train_teacher  # torch loads here, after parsing

    train_teacher(flags.model_name_or_path, data, train)


def distill_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DISTILL.description)
    cli.add_arguments(parser, DistillConfig, DataConfig, TrainConfig, defaults={"learning_rate": STUDENT_LEARNING_RATE})
    cli.add_debug_arg(parser)
    return parser


def distill_main(flags: argparse.Namespace) -> None:
    configs = DistillConfig.from_flags(flags), DataConfig.from_flags(flags), TrainConfig.from_flags(flags)
    from .jobs.distill import distill  # torch loads here, after parsing

    distill(*configs)


def evaluate_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=EVALUATE.description)
    cli.add_arguments(parser, EvalConfig, DataConfig)
    cli.add_debug_arg(parser)
    return parser


def evaluate_main(flags: argparse.Namespace) -> None:
    configs = EvalConfig.from_flags(flags), DataConfig.from_flags(flags)
    from .jobs.evaluate import evaluate  # torch loads here, after parsing

    evaluate(*configs)


def sweep_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=SWEEP.description)
    cli.add_arguments(parser, SweepConfig, DistillConfig, DataConfig, TrainConfig,
                      defaults={"learning_rate": STUDENT_LEARNING_RATE, "selection_split": 0.1})
    cli.add_debug_arg(parser)
    return parser


def sweep_main(flags: argparse.Namespace) -> None:
    configs = (SweepConfig.from_flags(flags), DistillConfig.from_flags(flags), DataConfig.from_flags(flags),
               TrainConfig.from_flags(flags))
    from .jobs.sweep import sweep  # torch and Optuna load here, after parsing

    sweep(*configs)


TEACHER = Command("teacher", "trainer_teacher.py", "Fine-tune a teacher classifier.", teacher_parser, teacher_main)
DISTILL = Command("distill", "distilled-bert.py", "Distill a student classifier from a teacher.", distill_parser,
                  distill_main)
EVALUATE = Command("evaluate", "evaluate.py", "Evaluate a text classifier.", evaluate_parser, evaluate_main)
SWEEP = Command("sweep", "sweep.py", "Search the distillation settings of a student.", sweep_parser, sweep_main)
COMMANDS = {command.name: command for command in (TEACHER, DISTILL, EVALUATE, SWEEP)}
