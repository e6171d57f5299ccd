"""Evaluate a classifier on one split: accuracy, precision, recall, F1, per-class report, confusion matrix.

    python evaluate.py --model ./models/student --data_path ./data/sst2
    python evaluate.py --model ./models/student --teacher ./models/teacher   # side by side
    python evaluate.py --model ./models/student --text "a gorgeous, witty film" --top_k 2

On a split without labels (SST-2's test set) it writes predictions in GLUE submission form.
This file's name shadows the `evaluate` package, which is not used.
"""

import argparse

from kd_common import cli
from kd_common.evaluation import evaluate_model


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a text classifier.")
    parser.add_argument("--model", default="./models/student", help="model folder (or hub id) (default: %(default)s)")
    parser.add_argument("--teacher", default=None,
                        help="also score this teacher on the same split and compare: accuracy, F1, agreement, "
                             "KL(teacher || student), calibration, size, latency, throughput")
    parser.add_argument("--latency_samples", type=int, default=100,
                        help="measure batch-1 latency (p50/p95) over this many examples; 0 skips it "
                             "(default: %(default)s)")
    parser.add_argument("--split", default="validation",
                        help="split to score when the data has several; dev = validation (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=64, help="evaluation batch size (default: %(default)s)")
    parser.add_argument("--output", default=None, help="write all metrics to this JSON file")
    parser.add_argument("--report_dir", default=None,
                        help="write metrics.json, per_class.csv, confusion_matrix.png, reliability.png and report.md here")
    parser.add_argument("--quantize", choices=("dynamic-int8",), default=None,
                        help="also score the model after dynamic int8 quantization of its Linear layers (CPU), "
                             "next to the fp32 model")
    parser.add_argument("--save_quantized", default=None,
                        help="with --quantize: write the int8 model to this folder, which evaluate.py --model loads")
    parser.add_argument("--text", action="append", default=None,
                        help="classify this text and print its top-k labels (repeatable); no data set is scored")
    parser.add_argument("--input_file", default=None, help="classify each non-blank line of this file, as --text")
    parser.add_argument("--top_k", type=int, default=3, help="labels shown per text (default: %(default)s)")
    parser.add_argument("--predictions_file", default=None,
                        help="write index<TAB>prediction here (default on an unlabeled split: "
                             "<model>/predictions_<split>.tsv)")
    cli.add_data_args(parser)
    cli.add_precision_arg(parser)
    cli.add_debug_arg(parser)
    return parser


if __name__ == "__main__":
    cli.run(evaluate_model, parse_args())
