"""Write docs/flags.md from the four entry scripts' parsers, so the flags page cannot drift from the code.

    python scripts/flags_doc.py            # rewrite docs/flags.md
    python scripts/flags_doc.py --check    # exit 1 when docs/flags.md is not what this would write

Each script's flags come from the config dataclasses (kd_bert/config.py, through cli.add_arguments):
for every script, one table per argparse group gives each flag with its aliases (and its choices), its
default and its help text as `--help` shows it. NOTES adds a short line where the help text leaves out something worth
knowing, or a link to the page that explains the flag.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from generated_docs import write_or_check

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "flags.md"
sys.path.insert(0, str(REPO))

from kd_bert.commands import COMMANDS  # noqa: E402

PARSERS = {command.script: command.parser for command in COMMANDS.values()}  # each script's parse_args
SCRIPTS = {
    "trainer_teacher.py": "fine-tune the teacher",
    "distilled-bert.py": "distill the student",
    "evaluate.py": "score a model",
    "sweep.py": "search the distillation settings",
}

# By flag (its dest): what the help text does not say, kept short; links are relative to docs/.
NOTES = {
    "config": "see [Config files](config-files.md)",
    "mixed_precision": "checked on the machine's CPU flags or GPU; see [Precision](performance.md#precision)",
    "data_path": "see [Data](data.md)",
    "text_column": "see [Data](data.md) for the detected names",
    "text_pair_column": "a pair is tokenized as one input: `[CLS] a [SEP] b [SEP]`",
    "validation_split": "evaluate.py holds out the fraction its model was trained with; see [Data](data.md)",
    "max_length": "512 for BERT; checked against every model before anything loads",
    "on_bad_rows": "see [Data](data.md)",
    "output_dir": "the model goes to `<output_dir>/teacher` or `<output_dir>/student`; `--output_air` is "
                  "accepted because the project's original README spelled it so",
    "num_train_epochs": "epochs",
    "eval_batch_size": "validation batch size",
    "weight_decay": "AdamW weight decay; none on biases and LayerNorm",
    "gradient_accumulation_steps": "micro-batches per optimizer update",
    "seed": "seeds Python, NumPy, torch and the shuffle order",
    "max_train_samples": "see [Data](data.md)",
    "group_by_length": "see [Speed](performance.md#speed-distillation-at-the-cost-of-fine-tuning)",
    "overwrite_output_dir": "without it such a run stops before loading anything",
    "checkpointing_steps": "see [Never lose work](never-lose-work.md)",
    "resume_from_checkpoint": "see [Never lose work](never-lose-work.md)",
    "head": "see [Distillation methods](methods.md)",
    "eval_steps": "these evaluations leave training unchanged, loss for loss",
    "freeze_embeddings": "see [Speed](performance.md#speed-distillation-at-the-cost-of-fine-tuning)",
    "metric_for_best_model": "see [Regression](data.md#regression)",
    "report_to": "see [Outputs](outputs.md)",
    "learning_rate": "2e-5 for the teacher, 5e-5 for the student",
    "alpha": "see [The loss](methods.md#the-loss)",
    "temperature": "T in [the loss](methods.md#the-loss)",
    "teacher_logits": "see [Speed](performance.md#speed-distillation-at-the-cost-of-fine-tuning)",
    "cache_dir": "see [Speed](performance.md#speed-distillation-at-the-cost-of-fine-tuning)",
    "student_init": "teacher_layers also takes the teacher's head; static needs model2vec, see [Distillation "
                    "methods](methods.md#static-embedding-students)",
    "transfer_data": "see [Data](data.md)",
    "teacher": "see [Outputs](outputs.md#evaluatepy-what-it-prints-and-writes)",
    "quantize": "`dynamic-int8`, the deprecated torch route, is gone; see [Deploying with ONNX "
                "Runtime](deploy-onnx.md)",
    "export_onnx": "see [Deploying with ONNX Runtime](deploy-onnx.md)",
    "selection_split": "see [Searching the settings](sweep.md#honest-selection)",
    "search": "see [Searching the settings](sweep.md#the-space)",
    "trials": "see [Searching the settings](sweep.md)",
    "pruner": "see [Searching the settings](sweep.md#pruning)",
    "objectives": "see [Which student to ship](sweep.md#which-student-to-ship---objectives-accuracylatency)",
    "max_drop": "see [Which student to ship](sweep.md#which-student-to-ship---objectives-accuracylatency)",
    "timing_samples": "see [Which student to ship](sweep.md#which-student-to-ship---objectives-accuracylatency)",
    "timing_rounds": "see [Which student to ship](sweep.md#which-student-to-ship---objectives-accuracylatency)",
    "storage": "see [Searching the settings](sweep.md#several-machines-on-one-study)",
}

# Flag names and angle-bracket placeholders (<output_dir>, index<TAB>prediction) as code: outside a code
# span a Markdown renderer would take <output_dir> for an HTML tag and drop it.
CODE = re.compile(r"(?<![\w`])(--[a-z][a-z0-9_-]*|[\w./$~-]*<[\w|]+>[\w./<>|-]*)")


def flags_of(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of the parser but --help: what the page must name."""
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


def default_of(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
        return "on" if action.default else "off"
    if action.default is None:
        return "unset"
    return f"`{action.default}`"


def cell(text: str) -> str:
    return CODE.sub(r"`\1`", " ".join(text.split())).replace("|", "\\|")


def table(parser: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> list[str]:
    formatter = parser._get_formatter()
    rows = ["| flag | default | help | notes |", "|---|---|---|---|"]
    for action in group._group_actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = " ".join(f"`{name}`" for name in action.option_strings)
        if action.choices is not None:  # as --help's usage line shows them
            names += f" `{{{','.join(map(str, action.choices))}}}`"
        help_text = formatter._expand_help(action) if action.help else ""  # %(default)s as --help shows it
        rows.append(f"| {names} | {default_of(action)} | {cell(help_text)} | {NOTES.get(action.dest, '')} |")
    return rows


def page() -> str:
    lines = [
        "# Flags",
        "",
        "<!-- generated by `python scripts/flags_doc.py`: do not edit by hand -->",
        "This page is generated by `python scripts/flags_doc.py` from the four scripts' parsers, whose flags come",
        "from the config dataclasses in `kd_bert/config.py`; do not edit it by hand. `python scripts/flags_doc.py",
        "--check` fails when it is out of date. The help column is what `--help` prints.",
        "",
        "All four scripts take the data flags; the three training scripts take the training flags, and sweep.py",
        "takes every flag of distilled-bert.py, a trial being a distillation. Any flag can",
        "also come from a file: see [Config files](config-files.md). Every field of the Python API's configs is",
        "the flag of the same name: see [the Python API](api.md).",
        "",
    ]
    lines += [f"- [{script}](#{anchor(script)}): {what}" for script, what in SCRIPTS.items()]
    for script, what in SCRIPTS.items():
        parser = PARSERS[script]()
        lines += ["", f"## {script}", "", f"{parser.description} (`python {script} --help`)"]
        for group in parser._action_groups:
            if any(not isinstance(a, argparse._HelpAction) for a in group._group_actions):
                lines += ["", f"### {script}: {group.title}", "", *table(parser, group)]
    return "\n".join(lines) + "\n"


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--check", action="store_true", help="exit 1 when docs/flags.md differs from what would be "
                                                           "written; write nothing")
    check = args.parse_args(argv).check
    status = write_or_check(PAGE, None, page(), check, "python scripts/flags_doc.py")
    if not check:
        print(f"wrote {PAGE.relative_to(REPO) if PAGE.is_relative_to(REPO) else PAGE}")
    return status


if __name__ == "__main__":
    sys.exit(main())
