"""Distill a student classifier (default bert-base-uncased) from a fine-tuned teacher.

    python distilled-bert.py --teacher_model ./models/teacher --output_dir ./models/

Loss: alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y), plus any
weighted intermediate-layer terms (TinyBERT, DistilBERT's cosine); the student can start from a
pretrained model, from the teacher's own layers, or be a BiLSTM. README: "Distillation methods".
Writes <output_dir>/student, a Hugging Face model folder like the teacher's.
"""

import argparse

from kd_common import cli
from kd_common.jobs import distill_student


def parse_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Distill a student classifier from a teacher.")
    parser.add_argument("--teacher_model", default="./models/teacher",
                        help="fine-tuned teacher folder (or hub id) (default: %(default)s)")
    parser.add_argument("--student_model", default="bert-base-uncased",
                        help="hub id or local model folder the student starts from, or 'bilstm' for a BiLSTM "
                             "student (default: %(default)s)")
    cli.add_data_args(parser)
    cli.add_training_args(parser, learning_rate=5e-5)
    cli.add_distillation_args(parser)
    cli.add_precision_arg(parser)
    cli.add_debug_arg(parser)
    return parser


if __name__ == "__main__":
    cli.run(distill_student, parse_args())
