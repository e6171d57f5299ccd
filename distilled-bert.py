"""Distill a student classifier (default bert-base-uncased) from a fine-tuned teacher.

    python distilled-bert.py --teacher_model ./models/teacher --output_dir ./models/

Loss: alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y), plus any
weighted intermediate-layer terms (TinyBERT, DistilBERT's cosine); the student can start from a
pretrained model, from the teacher's own layers, or be a BiLSTM: see docs/methods.md.
Writes <output_dir>/student, a Hugging Face model folder like the teacher's.
"""

from kd_bert import cli
from kd_bert.commands import DISTILL

# The parser and main of the command, shared with the installed `kd-bert distill` (kd_bert/commands.py).
parse_args, main = DISTILL.parser, DISTILL.main

if __name__ == "__main__":
    cli.run(main, parse_args())
