"""Search the distillation settings: a study of distillations compared on a selection split held out
of the training data, the teacher's logits computed once and shared, bad trials pruned, resumable.

    python sweep.py --teacher_model ./models/teacher --output_dir ./models/sweep --trials 16 \
        --search alpha=0.1:1.0 temperature=1:8 learning_rate=1e-5:3e-4:log augment=0,1,2

Takes every flag of distilled-bert.py (a trial is a distillation). Writes <output_dir>/student, the
best trial's student scored once on the validation split, and <output_dir>/sweep: trials.csv,
trials.md, history.png, settings.png, best_config.yaml and the study (study.db). Run the same
command again to continue a sweep that was stopped. Needs Optuna (pip install optuna).
"""

import argparse

from kd_bert import DataConfig, DistillConfig, SweepConfig, TrainConfig, cli
from kd_bert.config import STUDENT_LEARNING_RATE


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Search the distillation settings of a student.")
    cli.add_arguments(parser, SweepConfig, DistillConfig, DataConfig, TrainConfig,
                      defaults={"learning_rate": STUDENT_LEARNING_RATE, "selection_split": 0.1})
    cli.add_debug_arg(parser)
    return parser


def main(flags: argparse.Namespace) -> None:
    # The configs check themselves before torch loads: a bad value fails at once.
    configs = (SweepConfig.from_flags(flags), DistillConfig.from_flags(flags), DataConfig.from_flags(flags),
               TrainConfig.from_flags(flags))
    from kd_bert import sweep  # torch and Optuna load here, after parsing: --help answers at once

    sweep(*configs)


if __name__ == "__main__":
    cli.run(main, parse_args())
