"""Evaluate a classifier on one split: accuracy, precision, recall, F1, per-class report, confusion matrix.

    python evaluate.py --model ./models/student --data_path ./data/sst2
    python evaluate.py --model ./models/student --teacher ./models/teacher   # side by side
    python evaluate.py --model ./models/student --text "a gorgeous, witty film" --top_k 2

On a split without labels (SST-2's test set) it writes predictions in GLUE submission form.
This file's name shadows the `evaluate` package, which is not used.
"""

import argparse

from kd_bert import DataConfig, EvalConfig, cli


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a text classifier.")
    cli.add_arguments(parser, EvalConfig, DataConfig)
    cli.add_debug_arg(parser)
    return parser


def main(flags: argparse.Namespace) -> None:
    configs = EvalConfig.from_flags(flags), DataConfig.from_flags(flags)  # a bad value fails before torch loads
    from kd_bert import (
        evaluate,  # torch loads here, after parsing: --help answers at once
    )

    evaluate(*configs)


if __name__ == "__main__":
    cli.run(main, parse_args())
