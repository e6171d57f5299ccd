"""What every training run shares, the teacher's and the student's: the job's settings, precision and
Accelerator (Job), the train and validation splits read and checked, the resume point, and fit(),
which trains with checkpoints and saves the best model with its records."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import accelerate
import numpy as np
import torch
import transformers
from accelerate.utils import set_seed
from torch import nn

from ..config import DataConfig, TrainConfig
from ..data.batching import MODEL, EncodedSplit, encode_for_models, eval_loader
from ..data.checks import check_training_data
from ..data.read import RawData, TextSplit
from ..data.splits import carve_selection, eval_sample, to_text_split, train_sample
from ..deploy.model_card import model_card
from ..distillation.objectives import Objective
from ..log import show
from ..models.load import (
    count_parameters,
    load_classifier,
    load_tokenizer,
    save_model_atomically,
    size_on_disk,
)
from ..results import TrainResult
from ..safety.atomic import write_atomically, write_json, write_text_atomically
from ..safety.checkpoints import (
    check_same_run,
    checkpoint_root,
    list_checkpoints,
    read_progress,
    resolve_resume,
    run_args,
)
from ..safety.stopping import Stopped
from ..scoring.prediction import predict_logits
from ..scoring.report import training_curves_png
from ..task import Task
from ..train.accelerator import make_accelerator, start_tracking, stop_tracking
from ..train.loop import CheckpointPlan, Outcome, Run
from ..train.loop import train as train_loop  # named apart from the TrainConfig called `train` here
from ..train.precision import Precision, resolve_precision
from ..version import __version__

log = logging.getLogger(__name__)

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
    task: Task | None = None  # known once the labels are (set_task)
    # With --selection_split: the validation split, scored once with the kept model after training
    # (score_final; a sweep's trials leave it to the sweep, which scores its best trial alone).
    final_split: TextSplit | None = None
    score_final: bool = True
    # Called with (update, value of the picking metric) after every evaluation of the model in training; a sweep prunes from it.
    on_evaluation: Callable[[int, float], None] | None = None

    @classmethod
    def start(cls, data: DataConfig, train: TrainConfig, settings: dict) -> "Job":
        precision = resolve_precision(train.mixed_precision)
        accelerator = make_accelerator(precision, train.gradient_accumulation_steps, train.output_dir,
                                       train.report_to)
        set_seed(train.seed)
        return cls(data, train, settings, precision, accelerator)


def set_task(job: Job, label_names: list[str]) -> Task:
    """The task the labels make, and --metric_for_best_model read for it: for a regression task accuracy
    means pearson, and a metric the task has not is refused (before any model is loaded)."""
    job.task = Task.of(label_names)
    metric, note = job.task.best_model_metric(job.train.metric_for_best_model)
    if note:
        log.info(note)
    if metric != job.train.metric_for_best_model:
        job.train = replace(job.train, metric_for_best_model=metric)
    return job.task


@dataclass
class Learner:
    """A model about to be trained: the role it is saved as, where it started (for the log), its tokenizer."""

    role: str
    source: str
    model: nn.Module
    tokenizer: object


def encode_split(split: TextSplit, tokenizer, data: DataConfig) -> EncodedSplit:
    """A split tokenized for one model, with its labels."""
    return EncodedSplit(encode_for_models(split.texts, {MODEL: tokenizer}, data.max_length, split.pairs), split.labels)


def training_splits(job: Job, raw: RawData, columns, label_names, labels_from: str = "the training split",
                    train_optional: bool = False) -> tuple[TextSplit, TextSplit | None]:
    """The train and validation splits, checked (data_checks) before anything is trained; what the
    checks found and the bad rows dropped go to job.data_report. train_optional: the train split may
    be unlabeled or absent (pure distillation on unlabeled transfer data). --max_train_samples draws
    with the run's --seed, --max_eval_samples with a fixed one: the same rows in every script."""
    task = Task.of(label_names)
    if train_optional and "train" not in raw.splits:
        train_split = TextSplit("train", [], None, [], None if columns.pair is None else [])
    else:
        train_split = to_text_split(raw, "train", columns, task, need_labels=not train_optional,
                                    required_by="training needs a train split (e.g. train.tsv)",
                                    sample=train_sample(job.train.max_train_samples, job.train.seed),
                                    labels_from=labels_from)
    eval_split = None
    if "validation" in raw.splits:
        eval_split = to_text_split(raw, "validation", columns, task, need_labels=False, required_by="",
                                   sample=eval_sample(job.data.max_eval_samples), labels_from=labels_from)
        eval_split = eval_split if eval_split.labels is not None else None
    if job.train.selection_split:
        train_split, selection, note = carve_selection(train_split, job.train.selection_split,
                                                       job.task.stratified)
        log.info(note)
        job.final_split, eval_split = eval_split, selection  # the selection split picks; validation measures
        job.data_report["selection_examples"] = len(selection)
    if eval_split is None:
        log.warning(f"{raw.source} has no labeled validation split; the last epoch is saved")
    job.data_report.update(check_training_data(train_split, eval_split, label_names))
    job.data_report.update(on_bad_rows=job.data.on_bad_rows, dropped_rows=dict(raw.dropped))
    return train_split, eval_split


def resume_args(job: Job) -> dict:
    """The settings a checkpoint records and a resumption must match (see checkpoints.run_args)."""
    return run_args(job.settings, job.precision.mode, job.accelerator.num_processes)


def resume_point(job: Job, role: str) -> Path | None:
    """The checkpoint this run of `role` resumes from (None: a fresh run), found usable and written
    with the same settings. A job calls it before loading any model, so that a refused resumption
    costs seconds; the answer is kept for fit."""
    if role not in job.resumes:
        root = checkpoint_root(job.train.output_dir, role)
        resume = resolve_resume(_resume_value(job, role), root)
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
        log.info(f"{role}: no checkpoint in {root} yet, so it starts from the beginning")
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


def fit(job: Job, learner: Learner, train_data: EncodedSplit, eval_split: TextSplit | None, objective: Objective,
        extra: dict) -> TrainResult:
    """Train learner.model with `objective` on the job's settings and keep the best epoch in
    <output_dir>/<role>; `extra` goes into metrics.json."""
    train, accelerator, role, tokenizer = job.train, job.accelerator, learner.role, learner.tokenizer
    out_dir = Path(train.output_dir) / role
    eval_data = encode_split(eval_split, tokenizer, job.data) if eval_split is not None else None
    run_info = _run_info(job, role)
    summary = {
        "role": role,
        "label_names": list(job.task.label_names),
        "num_parameters": count_parameters(learner.model),
        "train_examples": len(train_data),
        "eval_examples": len(eval_split) if eval_split is not None else 0,
        "metric_for_best_model": train.metric_for_best_model,
        "selected_on": "selection" if train.selection_split else "validation",
        "objective": str(objective),
        "data": job.data_report,
        **extra,
        **job.precision.to_json(),
    }
    log.info(
        f"training {role} {learner.source}: {summary['num_parameters'] / 1e6:.1f}M parameters, {len(train_data)} "
        f"training and {summary['eval_examples']} validation examples, device {accelerator.device}, "
        f"{job.precision.describe()}"
    )
    log.info(f"objective: {objective}")
    log.debug(f"{role}: torch {torch.__version__} on {torch.get_num_threads()} threads; seed {train.seed}; "
              f"batch {train.batch_size} x {accelerator.num_processes} process(es) x "
              f"{train.gradient_accumulation_steps} accumulation step(s); learning rate {train.learning_rate}, "
              f"{train.num_train_epochs} epoch(s); evaluation every {train.eval_steps or 'epoch'} step(s), "
              f"checkpoints every {train.checkpointing_steps or 'never'}; output {out_dir}")

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
        outcome = train_loop(learner.model, train_data, eval_data,
                             Run(train, job.task, objective, on_best, checkpoints, job.on_evaluation), accelerator)
    except Stopped as stop:
        stop.model_dir = out_dir  # its message names where the best model so far stays
        if tracking:
            stop_tracking(accelerator)  # the curves so far are flushed to disk
        raise
    doc = _metrics_doc(summary, outcome)
    doc["total_train_seconds"] = time.perf_counter() - start
    if tracking:
        stop_tracking(accelerator)
    if job.final_split is not None and job.score_final:
        doc["validation"] = score_saved_model(job, out_dir, job.final_split)
    if accelerator.is_main_process:
        # The whole history, epochs after the best one included, and its chart.
        write_json(out_dir / METRICS_FILE, doc)
        write_text_atomically(out_dir / HISTORY_FILE, _history_lines(outcome))
        write_text_atomically(out_dir / CARD_FILE, card(doc)(out_dir))
        write_atomically(out_dir / CURVES_FILE, training_curves_png(outcome.history, role, job.task.curves))
        best = (outcome.best or {}).get("eval")
        metric = train.metric_for_best_model
        step = f", step {doc['best_step']}" if doc.get("best_step") else ""
        where = f"{summary['selected_on']} {metric} {best[metric]:.4f} at epoch {outcome.best_epoch}{step}" if best \
            else f"epoch {outcome.best_epoch}"
        if summary["selected_on"] == "selection" and doc.get("validation"):
            where += f"; validation {metric} {doc['validation'][metric]:.4f}, measured once"
        show(log, f"saved {role} to {out_dir} ({where})")
    return TrainResult(role, out_dir, doc)


def score_saved_model(job: Job, folder: Path, split: TextSplit) -> dict:
    """The metrics of the model saved in `folder` (the kept one, not the last state trained) on `split`."""
    model = job.accelerator.prepare_model(load_classifier(str(folder), "the kept model"), evaluation_mode=True)
    tokenizer = load_tokenizer(str(folder), "the kept model")
    loader = job.accelerator.prepare(eval_loader(encode_split(split, tokenizer, job.data), job.train.eval_batch_size))
    return job.task.evaluate(split.labels, predict_logits(model, loader, job.accelerator))


def _history_lines(outcome: Outcome) -> str:
    return "".join(json.dumps(record) + "\n" for record in outcome.history)


def _metrics_doc(summary: dict, outcome: Outcome) -> dict:
    best = outcome.best
    return {
        **summary,
        "best_epoch": outcome.best_epoch,
        # The split that picked the kept model: validation, or with --selection_split the selection split;
        # then "validation" is the kept model's one score there, set once training is over.
        summary["selected_on"]: best.get("eval"),
        **({"validation": None} if summary["selected_on"] == "selection" else {}),
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
            "kd_bert": __version__,
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
