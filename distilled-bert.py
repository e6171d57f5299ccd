"""Distill a student classifier (default bert-base-uncased) from a fine-tuned teacher.

    python distilled-bert.py --teacher_model ./models/teacher --output_dir ./models/

Loss: alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y), plus any
weighted intermediate-layer terms (TinyBERT, DistilBERT's cosine); the student can start from a
pretrained model, from the teacher's own layers, or be a BiLSTM: see docs/methods.md.
Writes <output_dir>/student, a Hugging Face model folder like the teacher's.
"""

import argparse

from kd_bert import DataConfig, DistillConfig, TrainConfig, cli
from kd_bert.config import STUDENT_LEARNING_RATE


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Distill a student classifier from a teacher.")
    cli.add_arguments(parser, DistillConfig, DataConfig, TrainConfig, defaults={"learning_rate": STUDENT_LEARNING_RATE})
    cli.add_debug_arg(parser)
    return parser


def main(flags: argparse.Namespace) -> None:
    # The configs check themselves before torch loads: a bad value fails at once.
    configs = DistillConfig.from_flags(flags), DataConfig.from_flags(flags), TrainConfig.from_flags(flags)
    from kd_bert import (
        distill,  # torch loads here, after parsing: --help answers at once
    )

    distill(*configs)


if __name__ == "__main__":
    cli.run(main, parse_args())
