"""Fine-tune a teacher classifier (default bert-large-uncased) on SST-2 or any text-classification data.

    python trainer_teacher.py --data_path ./data/sst2 --output_dir ./models/

Writes <output_dir>/teacher: a Hugging Face model folder with tokenizer, label maps,
training_args.json and metrics.json.
"""

from kd_bert import cli
from kd_bert.commands import TEACHER

# The parser and main of the command, shared with the installed `kd-bert teacher` (kd_bert/commands.py).
parse_args, main = TEACHER.parser, TEACHER.main

if __name__ == "__main__":
    cli.run(main, parse_args())
