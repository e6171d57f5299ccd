"""The model card (README.md) saved in every model folder, in the Hugging Face form: YAML metadata the
Hub reads (library, pipeline tag, base model, data, validation metrics), then what the model is, how
it was made, its dev results and size, the command that made it, and how to use it.

model_card is pure: it reads the run's records (the settings of training_args.json, the document of
metrics.json) and returns text, so the card says exactly what the files beside it say. The YAML is
written by hand: PyYAML is not a dependency, and this small, fixed shape needs only quoted strings.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import MISSING, fields
from pathlib import Path

from ..config import DataConfig, DistillConfig, TrainConfig
from ..registries.student_kinds import kind_named
from ..task import Task

SCRIPTS = {"teacher": "trainer_teacher.py", "student": "distilled-bert.py", "student_no_kd": "distilled-bert.py"}
# Written even at their defaults: they name the models and the data, and the scripts' learning-rate
# defaults differ (so a config field's default is not the script's).
ALWAYS_WRITTEN = ("model_name_or_path", "teacher_model", "student_model", "data_path", "output_dir", "learning_rate")
TRY_TEXT = "a gorgeous , witty film"


def model_card(role: str, settings: dict, metrics: dict, objective: str | None = None,
               weights_bytes: int | None = None) -> str:
    """README.md for the model folder <output_dir>/<role>. settings: every flag by name (training_args.json
    "args"); metrics: the metrics.json document of the epoch kept; objective: the loss as a weighted sum
    (str of the objective); weights_bytes: the size of the weight files, when they are written."""
    task = Task.of(metrics.get("label_names") or [])
    folder = os.path.join(settings.get("output_dir") or ".", role)  # as given: ./models/student stays so
    return "\n".join([
        "---",
        _front_matter(role, settings, metrics, task),
        "---",
        "",
        *_about(role, settings, metrics, task, objective),
        *_results(metrics, task),
        *_efficiency(metrics, weights_bytes, folder),
        "## The command that made it",
        "",
        "```bash",
        command_line(role, settings),
        "```",
        "",
        "Every setting, the library versions and the device are in `training_args.json`; every epoch's "
        "losses and validation metrics in `metrics.json` and `history.jsonl`.",
        "",
        *_usage(folder, task),
    ])


# ---------------------------------------------------------------- metadata


def base_model(role: str, settings: dict) -> str | None:
    """Where the model's weights started, as given: the fine-tuned checkpoint of a teacher, the student's
    pretrained start, or the teacher whose layers built it; None for a new BiLSTM."""
    if role == "teacher":
        return settings.get("model_name_or_path")
    kind = kind_named(settings.get("student_model"), settings.get("student_init"))
    return settings.get(kind.starts_from) if kind.starts_from else None


def card_metrics(metrics: dict, task: Task) -> dict[str, float]:
    """The kept epoch's validation metrics the card reports (Task.card_metrics), by metrics.json's names;
    none without a labeled validation split."""
    validation = metrics.get("validation") or {}
    return {name: validation[name] for name in task.card_metrics if isinstance(validation.get(name), (int, float))}


def _front_matter(role: str, settings: dict, metrics: dict, task: Task) -> str:
    data_path = settings.get("data_path")
    lines = ["library_name: transformers", "pipeline_tag: text-classification"]
    base = base_model(role, settings)
    if base:
        lines.append(f"base_model: {_quote(base)}")
    if data_path:
        lines += ["datasets:", f"- {_quote(data_path)}"]
    kind = "teacher" if role == "teacher" else "student"
    tags = ["knowledge-distillation", kind, task.hub_tag]
    lines += ["tags:", *(f"- {tag}" for tag in tags)]
    values = card_metrics(metrics, task)
    if values:
        average = (metrics.get("validation") or {}).get("average")
        lines += [
            "model-index:",
            f"- name: {_quote(role)}",
            "  results:",
            "  - task:",
            "      type: text-classification",
            "      name: Text Classification",
            "    dataset:",
            f"      name: {_quote(Path(data_path).name if data_path else 'data')}",
            f"      type: {_quote(data_path or 'data')}",
            "      split: validation",
            "    metrics:",
        ]
        for name, value in values.items():
            label = f"validation {name}" + (f" ({average})" if name in ("f1", "precision", "recall") and average
                                            else "")
            lines += [f"    - type: {name}", f"      value: {_yaml_float(value)}", f"      name: {_quote(label)}"]
    return "\n".join(lines)


def _quote(text: str) -> str:
    """A YAML double-quoted scalar: JSON's string escapes are YAML's, so any path or name reads back as written."""
    return json.dumps(str(text), ensure_ascii=False)


def _yaml_float(value: float) -> str:
    """A float YAML reads back as the same float: repr round-trips, but YAML 1.1 (PyYAML) needs a dot
    in an exponent form (1e-05 would read as a string) and spells the special values .nan and .inf."""
    value = float(value)
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


# ---------------------------------------------------------------- the body


def _about(role: str, settings: dict, metrics: dict, task: Task, objective: str | None) -> list[str]:
    what_task = task.describe_in_full()
    teacher = metrics.get("teacher_model")
    if role == "teacher":
        title, what = "teacher", f"The teacher: {what_task}, fine-tuned from `{settings.get('model_name_or_path')}`."
    elif role == "student_no_kd":
        title = "student trained without the teacher"
        what = (f"The same student as `../student`, from the same start and batches, trained on the gold labels "
                f"alone (alpha 0, no teacher), for comparison (`--compare_no_kd`): {what_task}.")
    else:
        title = "distilled student"
        what = f"A student distilled from the teacher `{teacher}`: {what_task}." if teacher else \
            f"A student trained without a teacher (no term needs one): {what_task}."
    lines = [f"# {title}", "", what, "", "## How it was made", ""]
    if role != "teacher":
        lines.append(f"- Start: {metrics.get('student_init') or base_model(role, settings)} "
                     f"(`--student_init {settings.get('student_init')}`)")
        if teacher:
            how = "cached from one pass" if metrics.get("teacher_logits") == "cached" else "computed at every step"
            lines.append(f"- Teacher: `{teacher}` ({_count(metrics.get('teacher_num_parameters'))} parameters), "
                         f"its logits {how}")
    if objective:
        lines.append(f"- Loss: `{objective}`{_loss_note(metrics, task)}")
    data = f"- Data: `{settings.get('data_path')}`, {metrics.get('train_examples')} training examples"
    extra = [f"{metrics[k]} {what}" for k, what in (("augmented_examples", "perturbed copies"),
                                                    ("transfer_examples", "unlabeled transfer texts"))
             if metrics.get(k)]
    lines.append(data + (f" (with {' and '.join(extra)} labeled by the teacher alone)" if extra else "")
                 + f", {metrics.get('eval_examples')} validation examples")
    epochs = len(metrics.get("history") or [])
    kept = f"- Kept: epoch {metrics.get('best_epoch')} of {epochs}"
    if metrics.get("best_step"):
        kept += f" (step {metrics['best_step']})"
    if metrics.get("selected_on") == "selection":
        kept += (f", the best by {metrics.get('metric_for_best_model')} on a selection split of "
                 f"{(metrics.get('data') or {}).get('selection_examples')} training examples held out "
                 f"(--selection_split); the validation split picked nothing")
    elif metrics.get("validation"):
        kept += f", the best by validation {metrics.get('metric_for_best_model')}"
    else:
        kept += ", the last (no labeled validation split to pick by)"
    lines += [kept, f"- Learning rate {settings.get('learning_rate')}, batch size {settings.get('batch_size')}, "
                    f"max length {settings.get('max_length')}, seed {settings.get('seed')}", ""]
    return lines


def _loss_note(metrics: dict, task: Task) -> str:
    """What the weights of the logit terms mean, in the run's own numbers."""
    alpha, loss = metrics.get("alpha"), metrics.get("loss") or {}
    if alpha is None or not loss.get("logits", True):
        return ""
    return task.loss_note(alpha, metrics.get("temperature"))


def _results(metrics: dict, task: Task) -> list[str]:
    values = card_metrics(metrics, task)
    lines = ["## Dev results", ""]
    if not values:
        return lines + ["No labeled validation split: nothing was scored during training. "
                        "`python evaluate.py --model <folder> --data_path <data>` scores it.", ""]
    validation = metrics["validation"]
    examples = validation.get("num_examples", metrics.get("eval_examples"))
    when = "scored once, after the selection split picked the model" if metrics.get("selected_on") == "selection" \
        else f"epoch {metrics.get('best_epoch')}"
    lines += [f"Validation split ({examples} examples), {when}:", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in values.items()]
    return lines + task.averaging_note(validation) + [""]


def _efficiency(metrics: dict, weights_bytes: int | None, folder: str) -> list[str]:
    lines = ["## Efficiency", "", "| | |", "|---|---|", f"| parameters | {_count(metrics.get('num_parameters'))} |"]
    teacher_params = metrics.get("teacher_num_parameters")
    if teacher_params and metrics.get("num_parameters"):
        lines.append(f"| teacher parameters | {_count(teacher_params)} "
                     f"({teacher_params / metrics['num_parameters']:.1f}x this model) |")
    if weights_bytes is not None:
        lines.append(f"| weights on disk | {weights_bytes / 1e6:.1f} MB |")
    if metrics.get("train_samples_per_second"):
        lines.append(f"| training throughput | {metrics['train_samples_per_second']:.1f} examples/s |")
    teacher = f" --teacher {shlex.quote(str(metrics['teacher_model']))}" if metrics.get("teacher_model") else ""
    return lines + ["", f"Training measures no latency; `python evaluate.py --model {shlex.quote(folder)}{teacher}` "
                        f"measures batch-1 latency (p50/p95) and throughput" + (" beside the teacher's" if teacher
                                                                                else "") + ".", ""]


def _usage(folder: str, task: Task) -> list[str]:
    returns = task.pipeline_returns()
    return ["## Usage", "", "```python", "from transformers import pipeline", "",
            f"classify = pipeline(\"text-classification\", model={json.dumps(folder)})",
            f"print(classify({json.dumps(TRY_TEXT)}))", "```", "", f"It returns {returns}.", ""]


def _count(n) -> str:
    return "unknown" if n is None else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


# ---------------------------------------------------------------- the command


def command_line(role: str, settings: dict) -> str:
    """The script call that reproduces `settings`: the flags that name models, data and output, the
    learning rate, and every other flag whose value is not its default; one flag per line."""
    kinds = {f.name: f for config in (DataConfig, TrainConfig, DistillConfig) for f in fields(config)
             if "help" in f.metadata}
    parts = [f"python {SCRIPTS.get(role, 'distilled-bert.py')}"]
    for name, value in settings.items():
        spec = kinds.get(name)
        default = spec.default if spec is not None and spec.default is not MISSING else None
        if value is None or (name not in ALWAYS_WRITTEN and value == default):
            continue
        action = spec.metadata["argparse"].get("action") if spec is not None else None
        if action == "store_true":
            parts.append(f"--{name}")
        elif action is not None and not isinstance(action, str):  # BooleanOptionalAction
            parts.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, list):
            parts.append(f"--{name} {shlex.quote(','.join(map(str, value)))}")
        else:
            parts.append(f"--{name} {shlex.quote(str(value))}")
    return " \\\n    ".join(parts)
