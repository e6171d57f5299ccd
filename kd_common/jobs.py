"""The two training jobs: fine-tune a teacher (trainer_teacher.py), distill a student (distilled-bert.py).
evaluate.py's job is in evaluation.py."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .augment import augment
from .batching import MODEL, TEACHER, EncodedSplit, encode_for_models
from .checkpoints import PROGRESS_FILE, RESUME_KEYS, check_same_run, checkpoint_root, resolve_resume
from .cli import train_config
from .data import (
    RawData,
    TextSplit,
    check_label_names,
    declared_label_names,
    infer_label_names,
    load_data,
    to_text_split,
)
from .distillation import StudentPlan, build_student, check_intermediate, format_kd_vs_no_kd, kd_vs_no_kd, loss_spec
from .errors import UserError
from .hub import resolve_model
from .losses import IGNORE_LABEL
from .models import (
    count_parameters,
    label_names_of,
    load_classifier,
    load_config,
    load_tokenizer,
    save_model_atomically,
    write_atomically,
    write_json,
    write_text_atomically,
)
from .objectives import DistillationObjective, LossSpec
from .precision import resolve_precision
from .report import training_curves_png
from .teacher_cache import cache_key, teacher_logits
from .training import TrainConfig, make_accelerator, start_tracking, stop_tracking, train

ARGS_FILE, METRICS_FILE = "training_args.json", "metrics.json"
HISTORY_FILE, CURVES_FILE = "history.jsonl", "training_curves.png"  # one line per epoch; loss and accuracy


def train_teacher(args: argparse.Namespace) -> None:
    """Fine-tune --model_name_or_path on the data's train split; save the best epoch to <output_dir>/teacher."""
    guard_output(args, ["teacher"])
    precision = resolve_precision(args.mixed_precision)
    accelerator = make_accelerator(precision, args.gradient_accumulation_steps, args.output_dir)
    _seed(args.seed)
    raw, columns = load_data(args, accelerator.print)
    label_names = infer_label_names(raw, columns, args.label_names)
    train_split, eval_split = _training_splits(args, raw, columns, label_names, accelerator)
    tokenizer = load_tokenizer(args.model_name_or_path, "--model_name_or_path")
    model = load_classifier(args.model_name_or_path, "--model_name_or_path", label_names, head=args.head)
    train_data = EncodedSplit(encode_for_models(train_split.texts, {MODEL: tokenizer}, args.max_length, train_split.pairs),
                              train_split.labels)
    _fit(args, accelerator, "teacher", model, tokenizer, train_data, eval_split, DistillationObjective(),
         label_names, extra={"head": args.head, **precision.to_json()})


def distill_student(args: argparse.Namespace) -> None:
    """Train a student against the teacher with the terms the flags weigh; save the best epoch to
    <output_dir>/student (and, with --compare_no_kd, the same student trained without the teacher to
    <output_dir>/student_no_kd).

    With alpha = 0 and no intermediate-layer term the teacher is never loaded (unless the student is
    built from its layers or tokenized with its tokenizer): that run is plain fine-tuning.
    """
    spec = loss_spec(args)
    plan = StudentPlan.from_args(args, spec)
    guard_output(args, ["student", "student_no_kd"] if args.compare_no_kd else ["student"])
    # Every model source is checked before anything heavy is loaded: a typo fails in seconds.
    if plan.kind == "pretrained":
        resolve_model(args.student_model, "--student_model")
    if plan.load_teacher:
        resolve_model(args.teacher_model, "--teacher_model")
    if args.student_tokenizer:
        resolve_model(args.student_tokenizer, "--student_tokenizer")
    precision = resolve_precision(args.mixed_precision)
    accelerator = make_accelerator(precision, args.gradient_accumulation_steps, args.output_dir)
    _seed(args.seed)
    raw, columns = load_data(args, accelerator.print)
    teacher = teacher_tokenizer = None
    if plan.load_teacher:
        label_names = label_names_of(load_config(args.teacher_model, "--teacher_model"))
        check_label_names(declared_label_names(raw, args.label_names), label_names, f"the teacher {args.teacher_model}")
        teacher_tokenizer = load_tokenizer(args.teacher_model, "--teacher_model")
        teacher = load_classifier(args.teacher_model, "--teacher_model", eager_attention=spec.needs_attentions)
    else:
        label_names = infer_label_names(raw, columns, args.label_names)
    train_split, eval_split = _training_splits(args, raw, columns, label_names, accelerator)

    def new_student(source_teacher):
        _seed(args.seed)  # every student built here starts the same, with or without a teacher
        return build_student(args, plan, spec, source_teacher, teacher_tokenizer, label_names)

    student, tokenizer = new_student(teacher)
    # --compare_no_kd builds its second student after the first has trained; one built from the
    # teacher's layers needs the teacher then, even if its logits were cached and it was freed.
    twin_source = teacher if args.compare_no_kd and plan.kind == "teacher_layers" else None
    projection = check_intermediate(spec, student, tokenizer, teacher, teacher_tokenizer) if spec.intermediate_weights() else None
    texts, pairs, labels = train_split.texts, train_split.pairs, train_split.labels
    if args.augment:
        mask = teacher_tokenizer.mask_token or "[MASK]"
        copies = augment(texts, args.augment, args.seed, mask)
        if pairs is not None:  # both texts of a pair are perturbed, each with its own draws
            pairs = pairs + augment(pairs, args.augment, args.seed + 1, mask)
        texts, labels = texts + copies, labels + [IGNORE_LABEL] * len(copies)
        accelerator.print(f"transfer set: {len(train_split)} sentences and {len(copies)} perturbed copies "
                          f"(--augment {args.augment}), the copies labeled by the teacher alone")
    run_teacher = spec.needs_teacher
    if teacher is not None and not run_teacher:
        teacher = None  # needed only to build or tokenize the student
    tokenizers = {MODEL: tokenizer} if teacher is None else {MODEL: tokenizer, TEACHER: teacher_tokenizer}
    encodings = encode_for_models(texts, tokenizers, args.max_length, pairs)
    extra = {
        "teacher_model": args.teacher_model if teacher is not None else None,
        "teacher_num_parameters": count_parameters(teacher) if teacher is not None else None,
        "teacher_logits": plan.teacher_logits if teacher is not None else None,
        "student_init": plan.describe(),
        "loss": {**asdict(spec), "stage": args.stage},
        "augmented_examples": len(texts) - len(train_split),
        "temperature": args.temperature,
        "alpha": args.alpha,
        **precision.to_json(),
    }
    if teacher is not None:
        # evaluation_mode: device placement and autocast, but no DDP wrapper (it gets no gradients).
        teacher = accelerator.prepare_model(teacher, evaluation_mode=True)
    if teacher is not None and plan.teacher_logits == "cached":
        key, description = cache_key(args.teacher_model, teacher.config, teacher_tokenizer, encodings[TEACHER],
                                     args.max_length, args.data_path, accelerator.mixed_precision)
        logits, extra["teacher_cache"] = teacher_logits(teacher, encodings[TEACHER], key, description, args.cache_dir,
                                                        args.eval_batch_size, accelerator)
        teacher = None  # not needed again: free its memory before the student trains
        train_data = EncodedSplit({MODEL: encodings[MODEL]}, labels, teacher_logits=logits)
    else:
        train_data = EncodedSplit(encodings, labels)
    objective = DistillationObjective(spec, teacher, projection)
    config = replace(train_config(args), select_best=args.stage != "intermediate")
    kd = _fit(args, accelerator, "student", student, tokenizer, train_data, eval_split, objective, label_names, extra,
              config)
    if args.compare_no_kd:
        # Built and trained exactly as a separate --alpha 0 run would be: the same start, batches and dropout.
        twin, _ = new_student(twin_source)
        plain = EncodedSplit(encode_for_models(train_split.texts, {MODEL: tokenizer}, args.max_length, train_split.pairs),
                             train_split.labels)  # the gold-labeled sentences: copies have no label to learn from
        alone = {**extra, "teacher_model": None, "teacher_num_parameters": None, "teacher_logits": None, "alpha": 0.0,
                 "loss": {**asdict(LossSpec()), "stage": "prediction"}, "augmented_examples": 0}
        alone.pop("teacher_cache", None)
        no_kd = _fit(args, accelerator, "student_no_kd", twin, tokenizer, plain, eval_split, DistillationObjective(),
                     label_names, alone, config)
        if accelerator.is_main_process:
            comparison = kd_vs_no_kd(kd, no_kd)
            write_json(Path(args.output_dir) / "kd_vs_no_kd.json", comparison)
            print(format_kd_vs_no_kd(comparison))


# ---------------------------------------------------------------- shared steps


def _seed(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)


def _training_splits(args, raw: RawData, columns, label_names, accelerator) -> tuple[TextSplit, TextSplit | None]:
    train_split = to_text_split(raw, "train", columns, label_names, need_labels=True,
                                required_by="training needs a train split (e.g. train.tsv)", limit=args.max_train_samples)
    eval_split = None
    if "validation" in raw.splits:
        eval_split = to_text_split(raw, "validation", columns, label_names, need_labels=False, required_by="",
                                   limit=args.max_eval_samples)
        eval_split = eval_split if eval_split.labels is not None else None
    if eval_split is None:
        accelerator.print(f"warning: {raw.source} has no labeled validation split; the last epoch is saved")
    return train_split, eval_split


def guard_output(args, roles: list[str]) -> None:
    """Refuse to replace a finished model unless asked to (--overwrite_output_dir) or continuing its
    run (--resume_from_checkpoint); checked before anything is loaded."""
    if args.overwrite_output_dir or args.resume_from_checkpoint:
        return
    for role in roles:
        folder = Path(args.output_dir) / role
        if folder.is_dir() and any(folder.iterdir()):
            raise UserError(f"{folder} already holds a model; pass --overwrite_output_dir to replace it, "
                            f"--resume_from_checkpoint to continue the run that wrote it, or another --output_dir")


def _checkpointing(args, accelerator, role: str, config: TrainConfig) -> TrainConfig:
    """Where this run's checkpoints go and which one it resumes from."""
    root = checkpoint_root(args.output_dir, role)
    run_args = {k: getattr(args, k, None) for k in RESUME_KEYS}
    resume = resolve_resume(args.resume_from_checkpoint, root)
    if resume is not None:
        check_same_run(json.loads((resume / PROGRESS_FILE).read_text(encoding="utf-8")), run_args, resume)
    elif args.checkpointing_steps and accelerator.is_main_process:
        shutil.rmtree(root, ignore_errors=True)  # a fresh run: an earlier run's checkpoints must not pass for its own
    return replace(config, checkpoint_dir=str(root) if args.checkpointing_steps else None,
                   resume_from=str(resume) if resume else None, run_args=run_args)


def _fit(args, accelerator, role: str, model, tokenizer, train_data: EncodedSplit,
         eval_split: TextSplit | None, objective, label_names: list[str], extra: dict, config=None) -> dict:
    """Train with `objective` and keep the best epoch in <output_dir>/<role>; returns its metrics.json."""
    out_dir = Path(args.output_dir) / role
    eval_data = None
    if eval_split is not None:
        eval_data = EncodedSplit(encode_for_models(eval_split.texts, {MODEL: tokenizer}, args.max_length,
                                                   eval_split.pairs), eval_split.labels)
    run_info = _run_info(args, accelerator, role, extra)
    summary = {
        "role": role,
        "label_names": label_names,
        "num_parameters": count_parameters(model),
        "train_examples": len(train_data),
        "eval_examples": len(eval_split) if eval_split is not None else 0,
        "metric_for_best_model": args.metric_for_best_model,
        **extra,
    }
    accelerator.print(
        f"training {role} {extra.get('student_init') or args.model_name_or_path}: "
        f"{summary['num_parameters'] / 1e6:.1f}M parameters, {len(train_data)} training and "
        f"{summary['eval_examples']} validation examples, device {accelerator.device}, "
        f"mixed precision {extra['mixed_precision']} ({extra['mixed_precision_reason']})"
    )

    def on_best(unwrapped_model, state: dict) -> None:
        save_model_atomically(unwrapped_model, tokenizer, out_dir, {
            ARGS_FILE: run_info, METRICS_FILE: _metrics_doc(summary, state), HISTORY_FILE: _history_lines(state),
        })

    config = _checkpointing(args, accelerator, role, config or train_config(args))
    tracking = start_tracking(accelerator, role)
    start = time.perf_counter()
    state = train(model, train_data, eval_data, objective, config, accelerator, label_names, on_best)
    doc = _metrics_doc(summary, state)
    doc["total_train_seconds"] = time.perf_counter() - start
    if tracking:
        stop_tracking(accelerator)
    if accelerator.is_main_process:
        # The whole history, epochs after the best one included, and its chart.
        write_json(out_dir / METRICS_FILE, doc)
        write_text_atomically(out_dir / HISTORY_FILE, _history_lines(state))
        write_atomically(out_dir / CURVES_FILE, training_curves_png(state["history"], role))
        best = state["best"].get("eval")
        step = f", step {doc['best_step']}" if doc.get("best_step") else ""
        where = f"validation {args.metric_for_best_model} {best[args.metric_for_best_model]:.4f} at epoch " \
                f"{state['best_epoch']}{step}" if best else f"epoch {state['best_epoch']}"
        print(f"saved {role} to {out_dir} ({where})")
    return doc


def _history_lines(state: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in state["history"])


def _metrics_doc(summary: dict, state: dict) -> dict:
    best = state["best"]
    return {
        **summary,
        "best_epoch": state["best_epoch"],
        "validation": best.get("eval"),
        "best_step": (best or {}).get("global_step"),  # set when an --eval_steps evaluation was the best
        # None while the first epoch runs (a model kept by --eval_steps before any epoch ended)
        "train_samples_per_second": float(np.mean([h["train_samples_per_second"] for h in state["history"]]))
        if state["history"] else None,
        "history": state["history"],
        **({"evaluations": state["evals"]} if state.get("evals") else {}),
    }


def _run_info(args, accelerator, role: str, extra: dict) -> dict:
    from importlib.metadata import version

    import accelerate
    import torch
    import transformers

    return {
        "role": role,
        "args": vars(args),
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
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "mixed_precision_reason": extra.get("mixed_precision_reason"),
    }
