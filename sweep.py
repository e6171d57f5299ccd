"""Search the distillation settings: a study of distillations compared on a selection split held out
of the training data, the teacher's logits computed once and shared, bad trials pruned, resumable.

    python sweep.py --teacher_model ./models/teacher --output_dir ./models/sweep --trials 16 \
        --search alpha=0.1:1.0 temperature=1:8 learning_rate=1e-5:3e-4:log augment=0,1,2

Takes every flag of distilled-bert.py (a trial is a distillation). Writes <output_dir>/student, the
best trial's student scored once on the validation split, and <output_dir>/sweep: trials.csv,
trials.md, history.png, settings.png, best_config.yaml and the study (study.db). Run the same
command again to continue a sweep that was stopped. Needs Optuna (pip install optuna).
"""

from kd_bert import cli
from kd_bert.commands import SWEEP

# The parser and main of the command, shared with the installed `kd-bert sweep` (kd_bert/commands.py).
parse_args, main = SWEEP.parser, SWEEP.main

if __name__ == "__main__":
    cli.run(main, parse_args())
