"""Running a training job: the teacher's fine-tuning (train_teacher), and the steps every training
run shares: guarding the output folder, reading the splits, training with checkpoints, and saving
the best model with its records. The distillation job is in distillation.py, evaluation in
evaluation.py."""

from __future__ import annotations

import json
import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import accelerate
import numpy as np
import torch
import transformers
from accelerate.utils import set_seed

from . import __version__
from .batching import MODEL, EncodedSplit, encode_for_models
from .checkpoints import check_same_run, checkpoint_root, list_checkpoints, read_progress, resolve_resume, run_args
from .config import DataConfig, TrainConfig
from .data import (
    RawData,
    TextSplit,
    eval_sample,
    infer_label_names,
    is_regression,
    load_data,
    to_text_split,
    train_sample,
)
from .data_checks import check_training_data
from .errors import UserError
from .files import write_atomically, write_json, write_text_atomically
from .metrics import best_model_metric
from .model_card import model_card
from .models import (
    check_max_length,
    count_parameters,
    load_classifier,
    load_tokenizer,
    save_model_atomically,
    size_on_disk,
)
from .objectives import DistillationObjective, LossSpec, Objective
from .precision import Precision, resolve_precision
from .preflight import check_file, check_folder, check_not_read, reads_of
from .report import training_curves_png
from .results import TrainResult
from .run_lock import is_first_process, output_lock
from .stopping import Stopped
from .training import CheckpointPlan, Outcome, make_accelerator, start_tracking, stop_tracking, trackers
from .training import train as train_loop  # named apart from the TrainConfig called `train` here

ARGS_FILE, METRICS_FILE = "training_args.json", "metrics.json"
HISTORY_FILE, CURVES_FILE = "history.jsonl", "training_curves.png"  # one line per epoch; loss and accuracy
CARD_FILE = "README.md"  # the Hugging Face model card (model_card.py)


@dataclass
class Job:
    """What the training runs of one call share."""

    data: DataConfig
    train: TrainConfig
    settings: dict  # every setting by flag name, recorded in training_args.json
    precision: Precision
    accelerator: accelerate.Accelerator
    data_report: dict = field(default_factory=dict)  # what the data checks found, recorded in metrics.json
    resumes: dict[str, Path | None] = field(default_factory=dict)  # by role: the checkpoint resumed from
    roles: list[str] = field(default_factory=list)  # the runs of this call, in order (two with --compare_no_kd)

    @classmethod
    def start(cls, data: DataConfig, train: TrainConfig, settings: dict) -> "Job":
        precision = resolve_precision(train.mixed_precision)
        accelerator = make_accelerator(precision, train.gradient_accumulation_steps, train.output_dir,
                                       train.report_to)
        set_seed(train.seed)
        return cls(data, train, settings, precision, accelerator)


def train_teacher(model_name_or_path: str, data: DataConfig, train: TrainConfig) -> TrainResult:
    """Fine-tune model_name_or_path on the data's train split; save the best epoch to <output_dir>/teacher."""
    check_outputs(train, ["teacher"], reads=reads_of(model_name_or_path=model_name_or_path, data_path=data.data_path))
    check_max_length(data.max_length, [(model_name_or_path, "--model_name_or_path")])
    with claim_output(train, ["teacher"]):
        return _train_teacher(model_name_or_path, data, train)


def _train_teacher(model_name_or_path: str, data: DataConfig, train: TrainConfig) -> TrainResult:
    job = Job.start(data, train, {"model_name_or_path": model_name_or_path, **data.to_flags(), **train.to_flags()})
    resume_point(job, "teacher")
    raw, columns = load_data(data, job.accelerator.print)
    label_names = infer_label_names(raw, columns, data.label_names)
    train = for_task(train, label_names, job.accelerator.print)
    train_split, eval_split = training_splits(job, raw, columns, label_names)
    tokenizer = load_tokenizer(model_name_or_path, "--model_name_or_path")
    model = load_classifier(model_name_or_path, "--model_name_or_path", label_names, head=train.head)
    objective = DistillationObjective(LossSpec(regression=is_regression(label_names)))
    return fit(job, "teacher", model_name_or_path, model, tokenizer, encode_split(train_split, tokenizer, data),
               eval_split, objective, label_names, {"head": train.head}, train)


def for_task(train: TrainConfig, label_names: list[str], say=print) -> TrainConfig:
    """The loop's settings with --metric_for_best_model read for the task the labels make: for a
    regression task accuracy means pearson, and a metric the task has not is refused (before any
    model is loaded)."""
    metric, note = best_model_metric(train.metric_for_best_model, is_regression(label_names))
    if note:
        say(note)
    return train if metric == train.metric_for_best_model else replace(train, metric_for_best_model=metric)


def encode_split(split: TextSplit, tokenizer, data: DataConfig) -> EncodedSplit:
    """A split tokenized for one model, with its labels."""
    return EncodedSplit(encode_for_models(split.texts, {MODEL: tokenizer}, data.max_length, split.pairs), split.labels)


def training_splits(job: Job, raw: RawData, columns, label_names, labels_from: str = "the training split",
                    train_optional: bool = False) -> tuple[TextSplit, TextSplit | None]:
    """The train and validation splits, checked (data_checks) before anything is trained; what the
    checks found and the bad rows dropped go to job.data_report. train_optional: the train split may
    be unlabeled or absent (pure distillation on unlabeled transfer data). --max_train_samples draws
    with the run's --seed, --max_eval_samples with a fixed one: the same rows in every script."""
    say = job.accelerator.print
    if train_optional and "train" not in raw.splits:
        train_split = TextSplit("train", [], None, [], None if columns.pair is None else [])
    else:
        train_split = to_text_split(raw, "train", columns, label_names, need_labels=not train_optional,
                                    required_by="training needs a train split (e.g. train.tsv)",
                                    sample=train_sample(job.train.max_train_samples, job.train.seed),
                                    labels_from=labels_from, say=say)
    eval_split = None
    if "validation" in raw.splits:
        eval_split = to_text_split(raw, "validation", columns, label_names, need_labels=False, required_by="",
                                   sample=eval_sample(job.data.max_eval_samples), labels_from=labels_from,
                                   say=say)
        eval_split = eval_split if eval_split.labels is not None else None
    if eval_split is None:
        say(f"warning: {raw.source} has no labeled validation split; the last epoch is saved")
    job.data_report.update(check_training_data(train_split, eval_split, label_names, say))
    job.data_report.update(on_bad_rows=job.data.on_bad_rows, dropped_rows=dict(raw.dropped))
    return train_split, eval_split


def check_outputs(train: TrainConfig, roles: list[str], files: dict[str, Path] | None = None,
                  reads: dict[str, str | None] | None = None) -> None:
    """Before anything is loaded: every folder the run writes (its output folder, the model folder of
    each role, their checkpoints, the trackers' logs) and every file (`files`, each named for the
    message) can be written (see preflight), and none of them is, holds or lies inside what the run
    reads (`reads`: the models and data by flag, see preflight.check_not_read)."""
    out = Path(train.output_dir)
    reads = reads or {}
    check_folder(out, f"--output_dir {train.output_dir}")
    for role in roles:
        check_folder(out / role, f"the model folder {out / role}")
        check_not_read(out / role, f"the model folder {out / role}", reads, whole=True)
        if train.checkpointing_steps:
            check_folder(checkpoint_root(out, role), f"the checkpoint folder {checkpoint_root(out, role)}")
            check_not_read(checkpoint_root(out, role), f"the checkpoint folder {checkpoint_root(out, role)}", reads,
                           whole=True)
    if trackers(train.report_to):
        check_folder(out / "runs", f"the tracking folder {out / 'runs'}")
        check_not_read(out / "runs", f"the tracking folder {out / 'runs'}", reads)
    for what, file in (files or {}).items():
        check_file(file, what)
        check_not_read(file, what, reads)


@contextmanager
def claim_output(train: TrainConfig, roles: list[str]):
    """The output folder held by this run while the block runs (run_lock), once no finished model is
    in the way (guard_output). One process of a distributed run holds it for all."""
    with output_lock(train.output_dir, enabled=is_first_process()):
        guard_output(train, roles)
        yield


def guard_output(train: TrainConfig, roles: list[str]) -> None:
    """Refuse to replace a finished model unless asked to (--overwrite_output_dir) or continuing its
    run (--resume_from_checkpoint); checked before anything is loaded."""
    if train.overwrite_output_dir or train.resume_from_checkpoint:
        return
    for role in roles:
        folder = Path(train.output_dir) / role
        if folder.is_dir() and any(folder.iterdir()):
            raise UserError(f"{folder} already holds a model; pass --overwrite_output_dir to replace it, "
                            f"--resume_from_checkpoint to continue the run that wrote it, or another --output_dir")


def resume_args(job: Job) -> dict:
    """The settings a checkpoint records and a resumption must match (see checkpoints.run_args)."""
    return run_args(job.settings, job.precision.mode, job.accelerator.num_processes)


def resume_point(job: Job, role: str) -> Path | None:
    """The checkpoint this run of `role` resumes from (None: a fresh run), found usable and written
    with the same settings. A job calls it before loading any model, so that a refused resumption
    costs seconds; the answer is kept for fit."""
    if role not in job.resumes:
        root = checkpoint_root(job.train.output_dir, role)
        resume = resolve_resume(_resume_value(job, role), root, job.accelerator.print)
        if resume is not None:
            check_same_run(read_progress(resume), resume_args(job), resume)
        job.resumes[role] = resume
    return job.resumes[role]


def _resume_value(job: Job, role: str) -> str | None:
    """--resume_from_checkpoint as it applies to `role`. When one call trains several runs (job.roles:
    --compare_no_kd's student, then student_no_kd), each keeps its own checkpoints: a checkpoint named
    by path belongs to the run whose folder holds it, and the other continues from its own newest; a
    later run with no checkpoint yet starts fresh, as the call stopped before it began."""
    value = job.train.resume_from_checkpoint
    if not value or len(job.roles) < 2:
        return value
    root = checkpoint_root(job.train.output_dir, role)
    others = {checkpoint_root(job.train.output_dir, r).resolve() for r in job.roles if r != role}
    if value != "latest" and Path(value).resolve().parent in others:
        value = "latest"
    if value == "latest" and role != job.roles[0] and not list_checkpoints(root):
        job.accelerator.print(f"{role}: no checkpoint in {root} yet, so it starts from the beginning")
        return None
    return value


def _checkpointing(job: Job, role: str) -> CheckpointPlan:
    """Where this run's checkpoints go and which one it resumes from."""
    train = job.train
    root = checkpoint_root(train.output_dir, role)
    resume = resume_point(job, role)
    if resume is None and train.checkpointing_steps and job.accelerator.is_main_process:
        shutil.rmtree(root, ignore_errors=True)  # a fresh run: an earlier run's checkpoints must not pass for its own
    return CheckpointPlan(str(root) if train.checkpointing_steps else None, str(resume) if resume else None,
                          resume_args(job))


def fit(job: Job, role: str, source: str, model, tokenizer, train_data: EncodedSplit, eval_split: TextSplit | None,
        objective: Objective, label_names: list[str], extra: dict, train: TrainConfig | None = None) -> TrainResult:
    """Train with `objective` and keep the best epoch in <output_dir>/<role>; `source` names where the
    model started, for the log. `train` overrides the job's TrainConfig for this run."""
    train = train or job.train
    accelerator = job.accelerator
    out_dir = Path(train.output_dir) / role
    eval_data = encode_split(eval_split, tokenizer, job.data) if eval_split is not None else None
    run_info = _run_info(job, role)
    summary = {
        "role": role,
        "label_names": label_names,
        "num_parameters": count_parameters(model),
        "train_examples": len(train_data),
        "eval_examples": len(eval_split) if eval_split is not None else 0,
        "metric_for_best_model": train.metric_for_best_model,
        "data": job.data_report,
        **extra,
        **job.precision.to_json(),
    }
    accelerator.print(
        f"training {role} {source}: {summary['num_parameters'] / 1e6:.1f}M parameters, {len(train_data)} training "
        f"and {summary['eval_examples']} validation examples, device {accelerator.device}, {job.precision.describe()}"
    )
    accelerator.print(f"objective: {objective}")

    def card(doc: dict):
        """The card for `doc`, written once the weights it reports the size of are in the folder."""
        return lambda folder: model_card(role, job.settings, doc, str(objective), size_on_disk(folder))

    def on_best(unwrapped_model, outcome: Outcome) -> None:
        # The card is saved with the weights it describes: a better epoch replaces both at once.
        doc = _metrics_doc(summary, outcome)
        save_model_atomically(unwrapped_model, tokenizer, out_dir, {
            ARGS_FILE: run_info, METRICS_FILE: doc, HISTORY_FILE: _history_lines(outcome), CARD_FILE: card(doc),
        })

    checkpoints = _checkpointing(job, role)
    tracking = start_tracking(accelerator, role)
    start = time.perf_counter()
    try:
        outcome = train_loop(model, train_data, eval_data, objective, train, accelerator, label_names, on_best,
                             checkpoints)
    except Stopped as stop:
        stop.model_dir = out_dir  # its message names where the best model so far stays
        if tracking:
            stop_tracking(accelerator)  # the curves so far are flushed to disk
        raise
    doc = _metrics_doc(summary, outcome)
    doc["total_train_seconds"] = time.perf_counter() - start
    if tracking:
        stop_tracking(accelerator)
    if accelerator.is_main_process:
        # The whole history, epochs after the best one included, and its chart.
        write_json(out_dir / METRICS_FILE, doc)
        write_text_atomically(out_dir / HISTORY_FILE, _history_lines(outcome))
        write_text_atomically(out_dir / CARD_FILE, card(doc)(out_dir))
        write_atomically(out_dir / CURVES_FILE, training_curves_png(outcome.history, role))
        best = (outcome.best or {}).get("eval")
        metric = train.metric_for_best_model
        step = f", step {doc['best_step']}" if doc.get("best_step") else ""
        where = f"validation {metric} {best[metric]:.4f} at epoch {outcome.best_epoch}{step}" if best \
            else f"epoch {outcome.best_epoch}"
        print(f"saved {role} to {out_dir} ({where})")
    return TrainResult(role, out_dir, doc)


def _history_lines(outcome: Outcome) -> str:
    return "".join(json.dumps(record) + "\n" for record in outcome.history)


def _metrics_doc(summary: dict, outcome: Outcome) -> dict:
    best = outcome.best
    return {
        **summary,
        "best_epoch": outcome.best_epoch,
        "validation": best.get("eval"),
        "best_step": (best or {}).get("global_step"),  # set when an --eval_steps evaluation was the best
        # None while the first epoch runs (a model kept by --eval_steps before any epoch ended)
        "train_samples_per_second": float(np.mean([h["train_samples_per_second"] for h in outcome.history]))
        if outcome.history else None,
        "history": outcome.history,
        **({"evaluations": outcome.evals} if outcome.evals else {}),
    }


def _run_info(job: Job, role: str) -> dict:
    return {
        "role": role,
        "args": job.settings,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "kd_common": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
            "datasets": version("datasets"),  # not imported unless a saved or hub dataset is read
            "scikit-learn": version("scikit-learn"),
        },
        "device": str(job.accelerator.device),
        "num_processes": job.accelerator.num_processes,
        "mixed_precision": job.accelerator.mixed_precision,
        "mixed_precision_reason": job.precision.reason,
    }
