"""Evaluate a classifier on one split: accuracy, precision, recall, F1, per-class report, confusion matrix.

    python evaluate.py --model ./models/student --data_path ./data/sst2
    python evaluate.py --model ./models/student --teacher ./models/teacher   # side by side
    python evaluate.py --model ./models/student --text "a gorgeous, witty film" --top_k 2

On a split without labels (SST-2's test set) it writes predictions in GLUE submission form.
This file's name shadows the `evaluate` package, which is not used.
"""

from kd_bert import cli
from kd_bert.commands import EVALUATE

# The parser and main of the command, shared with the installed `kd-bert evaluate` (kd_bert/commands.py).
parse_args, main = EVALUATE.parser, EVALUATE.main

if __name__ == "__main__":
    cli.run(main, parse_args())
