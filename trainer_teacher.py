"""Fine-tune a teacher classifier (default bert-large-uncased) on SST-2 or any text-classification data.

    python trainer_teacher.py --data_path ./data/sst2 --output_dir ./models/

Writes <output_dir>/teacher: a Hugging Face model folder with tokenizer, label maps,
training_args.json and metrics.json.
"""

import argparse

from kd_common import cli
from kd_common.jobs import train_teacher


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fine-tune a teacher classifier.")
    parser.add_argument("--model_name_or_path", default="bert-large-uncased",
                        help="hub id or local model folder to fine-tune (default: %(default)s)")
    cli.add_data_args(parser)
    cli.add_training_args(parser, learning_rate=2e-5)
    cli.add_precision_arg(parser)
    cli.add_debug_arg(parser)
    return parser


if __name__ == "__main__":
    cli.run(train_teacher, parse_args())
