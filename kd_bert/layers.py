"""The package's layers, from the foundations up: each folder and top-level module of kd_bert, and the entry
scripts above them, in the order they may import each other.

A module imports only from its own folder (or itself, for a top-level module) and from the layers below
its own; the units of one layer import none of each other. tests/test_layers.py holds that for every
import, at module level or inside a function, and docs/architecture.md's table of layers is written from
LAYERS by scripts/layers_doc.py, so neither the code nor the page can drift from this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ENTRY_SCRIPTS = ("trainer_teacher.py", "distilled-bert.py", "evaluate.py", "sweep.py")


@dataclass(frozen=True)
class Layer:
    units: tuple[str, ...]  # folders ("data") and top-level modules ("config", "__init__") of kd_bert, or scripts
    why: str  # what it holds, and why it sits where it does


LAYERS = (  # the foundations first
    Layer(("errors", "log", "version", "layers"),
          "what every module may use, and that uses nothing of the package: the one error a user can fix and its "
          "message helpers, the package logger, the version, and this order"),
    Layer(("results", "cache", "hub"),
          "plain values and what lies outside a run: the result types the API returns, the per-user cache "
          "folder, and the Hugging Face Hub (offline or not, an id or a path, a probe that fails in seconds)"),
    Layer(("registries",),
          "what is declared once: the loss terms, the student kinds, the precisions and the data formats; no "
          "torch, so the configs are built from it"),
    Layer(("config",),
          "every setting with its flag, default, help and checks, derived from the registries before torch loads"),
    Layer(("safety",),
          "what keeps work from being lost, checked before anything loads: paths, the output lock, resumable "
          "checkpoints, stop signals, atomic writes; it knows the configs, not the models"),
    Layer(("data",),
          "a --data_path into checked splits and batches; it knows no task kind: the run's task, passed in, "
          "reads the labels and says whether a sample is stratified"),
    Layer(("scoring",),
          "metrics, logits over a split, latency, the printed tables and report.md, from logits and batches; "
          "it knows no task kind either"),
    Layer(("task",),
          "the task kind as a strategy (Classification, Regression) over data's label readers and scoring's "
          "metrics; every layer above asks it what differs between the kinds"),
    Layer(("deploy",),
          "what a model folder ships besides its weights: the model card, the ONNX export and an ONNX folder "
          "read as a classifier; it knows the task, not how models are built"),
    Layer(("models",),
          "models loaded, built and saved: local folders against hub ids, packaged checkpoints, the student "
          "kinds' build functions, the mean-pooling, BiLSTM and static-embedding classes"),
    Layer(("distillation",),
          "the objective: the loss functions, the weighted terms and the teacher's logits cached once"),
    Layer(("train",),
          "the one training loop, its accelerator, optimizer and schedule, and --mixed_precision auto; the "
          "objective is passed in"),
    Layer(("search",),
          "what a sweep adds to a distillation: the space, the Optuna study and the trials' tables"),
    Layer(("jobs",),
          "the four jobs (teacher, distill, evaluate, sweep), composing everything below"),
    Layer(("__init__",),
          "the Python API: the configs, the results, and the jobs loaded on first use"),
    Layer(("cli",),
          "the command line: flags generated from the configs, config files, a UserError as one line"),
    Layer(("commands",),
          "each script's command: its configs and the job it runs, shared by the scripts and kd-bert"),
    Layer(("__main__",),
          "python -m kd_bert and the installed kd-bert: models install and list, and the four commands"),
    Layer(ENTRY_SCRIPTS,
          "thin entry scripts: flags to configs to a command; nothing imports them"),
)


def unit_name(unit: str) -> str:
    """How the page names a unit: kd_bert/data/, kd_bert/config.py, or a script."""
    if unit in ENTRY_SCRIPTS:
        return unit
    return f"kd_bert/{unit}/" if (PACKAGE / unit).is_dir() else f"kd_bert/{unit}.py"


def markdown() -> str:
    """docs/architecture.md's table of layers, the top first."""
    lines = ["| | imports only from below | why it sits here |", "|---|---|---|"]
    for number, layer in reversed(list(enumerate(LAYERS, start=1))):
        lines.append(f"| {number} | {', '.join(f'`{unit_name(u)}`' for u in layer.units)} | {layer.why} |")
    return "\n".join(lines) + "\n"
