"""Fine-tune a teacher classifier (default bert-large-uncased) on SST-2 or any text-classification data.

    python trainer_teacher.py --data_path ./data/sst2 --output_dir ./models/

Writes <output_dir>/teacher: a Hugging Face model folder with tokenizer, label maps,
training_args.json and metrics.json.
"""

import argparse

from kd_bert import DataConfig, TrainConfig, cli
from kd_bert.config import TEACHER_LEARNING_RATE


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fine-tune a teacher classifier.")
    parser.add_argument("--model_name_or_path", default="bert-large-uncased",
                        help="hub id or local model folder to fine-tune (default: %(default)s)")
    cli.add_arguments(parser, DataConfig, TrainConfig, defaults={"learning_rate": TEACHER_LEARNING_RATE})
    cli.add_debug_arg(parser)
    return parser


def main(flags: argparse.Namespace) -> None:
    data, train = DataConfig.from_flags(flags), TrainConfig.from_flags(flags)  # a bad value fails before torch loads
    from kd_bert import (
        train_teacher,  # torch loads here, after parsing: --help answers at once
    )

    train_teacher(flags.model_name_or_path, data, train)


if __name__ == "__main__":
    cli.run(main, parse_args())
