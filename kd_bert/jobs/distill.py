"""The distillation job (distilled-bert.py), as the steps a reader can follow in distill():

  1. plan the run from its configs: which loss terms, which student, what the teacher is used for;
  2. read the data and any --transfer_data, then load the teacher (when the plan uses one);
  3. build the student;
  4. build the transfer set: the training sentences, and any perturbed copies and unlabeled texts
     (--transfer_data) that only the teacher labels;
  5. produce the training data: with the teacher's logits cached from one pass, or the teacher run
     at every step;
  6. train, and keep the best student;
  7. with compare_no_kd, train the same student from the same start without the teacher.

Flag combinations that cannot work fail in step 1, before any model is loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from accelerate.utils import set_seed
from torch import nn

from ..config import DataConfig, DistillConfig, TrainConfig
from ..data.augment import augment, word_neighbours
from ..data.batching import (
    MODEL,
    TEACHER,
    EncodedSplit,
    Encoding,
    encode_for_models,
    encoding_rows,
    same_tokenizer,
)
from ..data.label_values import describe_labels
from ..data.labels import (
    check_label_names,
    declared_label_names,
    has_labels,
    has_scores,
    infer_label_names,
)
from ..data.read import Columns, RawData, TextSplit
from ..data.splits import load_data, load_unlabeled
from ..distillation.losses import IGNORE_LABEL
from ..distillation.objectives import DistillationObjective, LossSpec, uniform_layer_map
from ..distillation.teacher_cache import cache_key, logits_folder, teacher_logits
from ..registries.terms import TERMS, weight_flags
from ..errors import UserError
from ..models.hub import resolve_model
from ..models.load import (
    check_max_length,
    check_task,
    count_parameters,
    label_names_of,
    load_classifier,
    load_config,
    load_tokenizer,
)
from ..registries.student_kinds import INIT_CHOICES, STUDENT_MODEL, StudentKind, kind_of
from ..models.students import build_student, check_requirements, num_layers_of
from ..results import DistillResult
from ..safety.atomic import write_json
from ..safety.outputs import check_outputs, claim_output
from ..safety.preflight import check_folder, check_not_read, reads_of
from ..task import Task
from .job import Job, Learner, encode_split, fit, resume_point, set_task, training_splits
from ..log import show

log = logging.getLogger(__name__)

# What a run uses the teacher for.
NO_TEACHER = "none"  # never loaded: plain fine-tuning (alpha 0, no intermediate term)
BUILD_ONLY = "build_only"  # loaded to build or tokenize the student, never run
CACHED = "cached"  # run once over the transfer set; its logits are cached on disk
ONLINE = "online"  # run at every step (intermediate-layer terms need its hidden states)
COMPARISON_FILE = "kd_vs_no_kd.json"  # --compare_no_kd's two runs side by side, in <output_dir>


@dataclass(frozen=True)
class Plan:
    spec: LossSpec
    student: StudentKind
    teacher_use: str  # NO_TEACHER, BUILD_ONLY, CACHED or ONLINE
    source: str  # where the student starts

    @property
    def runs_teacher(self) -> bool:
        return self.teacher_use in (CACHED, ONLINE)

    def describe(self) -> str:
        return self.student.describe.format(source=self.source)


@dataclass
class Teacher:
    """The loaded teacher. `model` is released (None) once its logits are cached and nothing else
    needs it, so its memory is free before the student trains."""

    source: str
    model: nn.Module | None
    tokenizer: object
    label_names: list[str]


@dataclass
class TransferSet:
    """What the student trains on: the training sentences, then perturbed copies and unlabeled texts
    labeled by the teacher alone (IGNORE_LABEL in `labels`)."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[int]
    copies: int
    unlabeled: int = 0


def distill(distill: DistillConfig, data: DataConfig, train: TrainConfig) -> DistillResult:
    """Train a student against the teacher with the terms the config weighs; save the best epoch to
    <output_dir>/student (and, with compare_no_kd, the same student trained without the teacher to
    <output_dir>/student_no_kd)."""
    plan = plan_distillation(distill, train)
    roles = ["student", "student_no_kd"] if distill.compare_no_kd else ["student"]
    check_distillation_outputs(distill, plan, train, roles, data)
    check_sources(distill, plan)
    check_max_length(data.max_length, model_sources(distill, plan))
    with claim_output(train, roles):
        return _distill(distill, data, train, plan, roles)


def distill_trial(distill: DistillConfig, data: DataConfig, train: TrainConfig,
                  on_evaluation: Callable[[int, float], None]) -> DistillResult:
    """One trial of a sweep (jobs/sweep.py), which has checked the outputs and holds the lock: distill()
    into train.output_dir, each evaluation on the selection split reported to on_evaluation, and the
    validation split left unscored; the sweep scores its best trial there, once."""
    return _distill(distill, data, train, plan_distillation(distill, train), ["student"], on_evaluation)


def _distill(distill: DistillConfig, data: DataConfig, train: TrainConfig, plan: Plan,
             roles: list[str], on_evaluation: Callable[[int, float], None] | None = None) -> DistillResult:
    job = Job.start(data, train, {**distill.to_flags(), **data.to_flags(), **train.to_flags()})
    job.roles = roles
    if on_evaluation is not None:
        job.on_evaluation, job.score_final = on_evaluation, False
    resume_point(job, "student")
    raw, columns = load_data(data)
    # Read before the teacher loads: a wrong --transfer_data path or file fails in seconds.
    unlabeled = load_transfer_data(job, distill, columns)
    teacher = load_teacher(distill, plan, declared_label_names(raw, data.label_names), has_scores(raw, columns),
                           data.data_path)
    task = set_task(job, student_labels(raw, columns, data, teacher))
    label_names = list(task.label_names)
    plan_task(plan, task)
    job.train = replace(job.train, select_best=distill.stage != "intermediate")
    train = job.train
    train_split, eval_split = distillation_splits(job, distill, raw, columns, label_names, teacher)

    def new_student(source: Teacher | None):
        set_seed(train.seed)  # every student built here starts the same, with or without a teacher
        return build_student(distill, train.head, source, label_names, plan.spec.needs_attentions)

    student, tokenizer = new_student(teacher)
    projection = check_intermediate(plan.spec, student, tokenizer, teacher) if plan.spec.intermediate_weights() \
        else None
    transfer = transfer_set(train_split, distill.augment, train.seed, teacher, job, unlabeled, distill.augment_replace)
    # --compare_no_kd builds its second student after the first has trained; one built from the
    # teacher's layers needs the teacher's weights then, even if its logits were cached.
    keep_teacher = distill.compare_no_kd and plan.student.copies_teacher
    train_data, objective, extra = training_data(job, distill, plan, teacher, tokenizer, transfer, projection,
                                                 keep_teacher)
    extra["augmented_examples"] = transfer.copies
    extra["transfer_examples"] = transfer.unlabeled
    kd = fit(job, Learner("student", plan.describe(), student, tokenizer), train_data, eval_split, objective, extra)
    if not distill.compare_no_kd:
        return DistillResult(kd)
    # Built and trained exactly as a separate --alpha 0 run would be: the same start, batches and dropout.
    twin, _ = new_student(teacher if keep_teacher else None)
    fine_tuning = LossSpec(task=plan.spec.task)
    alone = {**extra, "teacher_model": None, "teacher_num_parameters": None, "teacher_logits": None, "alpha": 0.0,
             "loss": {**fine_tuning.to_json(), "stage": "prediction"}, "augmented_examples": 0, "transfer_examples": 0}
    alone.pop("teacher_cache", None)
    # the gold-labeled sentences only: the copies have no label to learn from
    no_kd = fit(job, Learner("student_no_kd", plan.describe(), twin, tokenizer),
                encode_split(train_split, tokenizer, data), eval_split, DistillationObjective(fine_tuning), alone)
    comparison = kd_vs_no_kd(kd.metrics, no_kd.metrics, task)
    comparison_file = Path(train.output_dir) / COMPARISON_FILE
    if job.accelerator.is_main_process:
        write_json(comparison_file, comparison)
        show(log, format_kd_vs_no_kd(comparison))
    return DistillResult(kd, no_kd, comparison, comparison_file)


# ---------------------------------------------------------------- 1. the plan


def loss_spec(distill: DistillConfig) -> LossSpec:
    """The terms and weights of this run; --stage keeps only the logit or the intermediate terms."""
    spec = LossSpec.from_config(distill)
    if distill.stage == "intermediate" and not spec.intermediate_weights():
        raise UserError(f"--stage intermediate trains only intermediate-layer terms, and all their weights are 0; "
                        f"set {weight_flags()}")
    return spec


def plan_distillation(distill: DistillConfig, train: TrainConfig) -> Plan:
    spec = loss_spec(distill)
    kind = kind_of(distill)
    intermediate = bool(spec.intermediate_weights())
    if kind.chosen_by == STUDENT_MODEL and distill.student_init != INIT_CHOICES[0]:
        raise UserError(f"--student_model {kind.name} and --student_init {distill.student_init} exclude each other: "
                        f"a {kind.label} has no transformer layers to copy")
    if not kind.has_layers and intermediate:
        raise UserError(f"a {kind.label} student has no hidden states or attention maps to match the teacher's; "
                        f"use logit terms only ({'/'.join(f'--{term.name}' for term in TERMS)}_weight 0)")
    if distill.student_layers and not kind.has_layers:
        raise UserError(f"--student_layers picks transformer layers, and a {kind.label} student has none; leave it out")
    if distill.student_layers and not kind.takes_layers:
        raise UserError("--student_layers picks the teacher's layers for --student_init teacher_layers; add that flag")
    if distill.augment and not spec.needs_teacher:
        raise UserError("--augment adds sentences that only the teacher can label; use --alpha above 0 "
                        "(or an intermediate-layer term)")
    if distill.transfer_data and not spec.needs_teacher:
        raise UserError("--transfer_data adds texts that only the teacher can label; use --alpha above 0 "
                        "(or an intermediate-layer term)")
    if train.head != "cls" and not kind.takes_head:
        raise UserError(f"--head {train.head} puts a new head on a pretrained encoder; a {kind.name} student has its "
                        f"own")
    check_requirements(kind)
    logits = distill.teacher_logits or (ONLINE if intermediate else CACHED)
    if logits == CACHED and intermediate:
        raise UserError("intermediate-layer terms need the teacher's hidden states at every step; "
                        "use --teacher_logits online (or leave it unset)")
    if spec.needs_teacher:
        use = logits
    elif kind.copies_teacher or (kind.uses_teacher_tokenizer and not distill.student_tokenizer):
        use = BUILD_ONLY
    else:
        use = NO_TEACHER
    return Plan(spec, kind, use, kind.source(distill))


def plan_task(plan: Plan, task: Task) -> None:
    """The task is known once the teacher (or the data) names the labels, and picks the logit terms
    declared for its kind (terms.LOGIT_TERMS: a regression task's are both mean squared errors)."""
    plan.spec.task = task.kind
    if task.kd_note and plan.spec.logits and plan.spec.alpha > 0:
        log.info(task.kd_note)


def check_distillation_outputs(distill: DistillConfig, plan: Plan, train: TrainConfig, roles: list[str],
                               data: DataConfig) -> None:
    """What a distillation writes, checked before anything loads: the model folders and, beside them,
    the comparison of --compare_no_kd; and the teacher-logit cache, shared with other runs."""
    files = {"the comparison file": Path(train.output_dir) / COMPARISON_FILE} if distill.compare_no_kd else {}
    check_outputs(train, roles, files, distillation_reads(distill, plan, data))
    if plan.teacher_use == CACHED:
        folder = logits_folder(distill.cache_dir)
        what = f"--cache_dir {distill.cache_dir}" if distill.cache_dir else f"the teacher-logit cache {folder}"
        check_folder(folder, what, "give a --cache_dir you can write to, or use --teacher_logits online, which needs "
                     "no cache")
        check_not_read(folder, what, distillation_reads(distill, plan, data))


def distillation_reads(distill: DistillConfig, plan: Plan, data: DataConfig) -> dict[str, str | None]:
    """What the run reads, which none of its outputs may replace: the teacher when the plan loads it, the
    student's checkpoint and tokenizer, the data and the transfer data."""
    return reads_of(teacher_model=distill.teacher_model if plan.teacher_use != NO_TEACHER else None,
                    student_model=distill.student_model if plan.student.starts_from == "student_model" else None,
                    student_tokenizer=distill.student_tokenizer, data_path=data.data_path,
                    transfer_data=distill.transfer_data)


def model_sources(distill: DistillConfig, plan: Plan) -> list[tuple[str, str]]:
    """The models whose inputs --max_length sizes: the teacher when it runs or is copied, the student
    from its own checkpoint (a teacher_layers student has the teacher's positions; a BiLSTM or static student
    has none)."""
    sources = [(distill.teacher_model, "--teacher_model")] if plan.teacher_use != NO_TEACHER else []
    if plan.student.starts_from == "student_model" and plan.student.has_layers:
        sources.append((distill.student_model, "--student_model"))
    return sources


def check_sources(distill: DistillConfig, plan: Plan) -> None:
    """Every model source is checked before anything heavy is loaded: a typo fails in seconds."""
    if plan.student.starts_from == "student_model":
        resolve_model(distill.student_model, "--student_model")
    if plan.teacher_use != NO_TEACHER:
        resolve_model(distill.teacher_model, "--teacher_model")
    if distill.student_tokenizer:
        resolve_model(distill.student_tokenizer, "--student_tokenizer")


# ---------------------------------------------------------------- 2. the teacher


def load_teacher(distill: DistillConfig, plan: Plan, declared: list[str] | None, scores: bool,
                 data_path: str) -> Teacher | None:
    """The teacher, its tokenizer and label names; None when the plan never uses it. The data's
    declared label names must be the teacher's, and its task too: a regression teacher for data whose
    labels are scores (`scores`), a classifier for classes."""
    if plan.teacher_use == NO_TEACHER:
        return None
    source = distill.teacher_model
    label_names = label_names_of(load_config(source, "--teacher_model"))
    check_task(label_names, scores, f"the teacher {source}", data_path)
    check_label_names(declared, label_names, f"the teacher {source}")
    tokenizer = load_tokenizer(source, "--teacher_model")
    model = load_classifier(source, "--teacher_model", eager_attention=plan.spec.needs_attentions)
    return Teacher(source, model, tokenizer, label_names)


def check_label_count(data_names: list[str], teacher: Teacher) -> None:
    """The student gets the teacher's labels, so their number must be the data's, even when one side
    names them only LABEL_0, LABEL_1, ... (check_label_names then has no order to compare)."""
    if len(data_names) != len(teacher.label_names):
        raise UserError(f"the teacher {teacher.source} has {len(teacher.label_names)} labels "
                        f"{describe_labels(teacher.label_names)} but the data has {len(data_names)} "
                        f"{describe_labels(data_names)}; distill with a teacher trained on these labels, or pass "
                        f"--label_names to declare the data's whole label set")


def student_labels(raw: RawData, columns: Columns, data: DataConfig, teacher: Teacher | None) -> list[str]:
    """The labels the student gets: the teacher's, which must be as many as the data's; the data's own
    when no teacher is loaded. Unlabeled data (pure distillation on --transfer_data) takes the
    teacher's as they are."""
    if teacher is None:
        return infer_label_names(raw, columns, data.label_names)
    if data.label_names or has_labels(raw, columns):
        check_label_count(infer_label_names(raw, columns, data.label_names), teacher)
    return teacher.label_names


def check_intermediate(spec: LossSpec, student, tokenizer, teacher: Teacher) -> nn.Module | None:
    """Checks what intermediate-layer terms need, fills in the layer map, and returns the projection
    from the student's hidden width to the teacher's (None when they match or no term needs it)."""
    if not same_tokenizer(tokenizer, teacher.tokenizer):
        raise UserError("intermediate-layer terms compare teacher and student token by token, so both need the same "
                        "tokenizer; this student has its own. Use logit terms only, or a student with the teacher's "
                        "tokenizer (--student_init teacher_layers)")
    student_layers, teacher_layers = num_layers_of(student.config), num_layers_of(teacher.model.config)
    if not spec.layer_map:
        spec.layer_map = uniform_layer_map(student_layers, teacher_layers)
    if len(spec.layer_map) != student_layers or not all(1 <= g <= teacher_layers for g in spec.layer_map):
        raise UserError(f"--layer_map {','.join(map(str, spec.layer_map))}: give one teacher layer (1 to "
                        f"{teacher_layers}) for each of the student's {student_layers} layers")
    student_width, teacher_width = student.config.hidden_size, teacher.model.config.hidden_size
    if spec.needs_hidden_states and student_width != teacher_width:
        return nn.Linear(student_width, teacher_width)  # TinyBERT's W_h, shared by every layer
    return None


# ---------------------------------------------------------------- 4. the transfer set


def load_transfer_data(job: Job, distill: DistillConfig, columns: Columns) -> TextSplit | None:
    """The unlabeled texts of --transfer_data (None without), read and checked."""
    if not distill.transfer_data:
        return None
    unlabeled = load_unlabeled(distill.transfer_data, columns, job.data.on_bad_rows)
    job.data_report["transfer_examples"] = len(unlabeled)
    return unlabeled


def distillation_splits(job: Job, distill: DistillConfig, raw: RawData, columns: Columns, label_names: list[str],
                        teacher: Teacher | None) -> tuple[TextSplit, TextSplit | None]:
    """The train and validation splits, checked. Pure distillation (alpha 1) uses no gold label: with
    unlabeled transfer data, the data may have an unlabeled train split, or none."""
    unlabeled_ok = bool(distill.transfer_data) and distill.alpha == 1 and not distill.compare_no_kd
    return training_splits(job, raw, columns, label_names,
                           f"the teacher {teacher.source}" if teacher else "the training split",
                           train_optional=unlabeled_ok)


def transfer_set(split: TextSplit, copies: int, seed: int, teacher: Teacher | None, job: Job,
                 unlabeled: TextSplit | None = None, p_replace: float = 0.0) -> TransferSet:
    """The training sentences, plus `copies` perturbed copies of each (Tang et al.; TinyBERT), plus
    the unlabeled texts of --transfer_data."""
    texts, pairs = list(split.texts), None if split.pairs is None else list(split.pairs)
    labels = list(split.labels) if split.labels is not None else [IGNORE_LABEL] * len(split)
    extra = []
    if copies:
        mask = teacher.tokenizer.mask_token or "[MASK]"
        neighbours = None
        if p_replace:
            embeddings = getattr(teacher.model, "get_input_embeddings", None)
            if embeddings is None or embeddings() is None:
                raise UserError(f"--augment_replace draws words from the teacher's embedding table, and the teacher "
                                f"{teacher.source} has none this run can read; leave --augment_replace at 0")
            table = embeddings().weight  # (vocab, dim)
            neighbours = word_neighbours(split.texts + (split.pairs or []), teacher.tokenizer, table)
            log.info(f"word replacement (--augment_replace {p_replace}): {len(neighbours)} words of the training "
                     f"set have neighbours in the teacher's embedding table")
        extra = augment(split.texts, copies, seed, mask, neighbours, p_replace)
        if pairs is not None:  # both texts of a pair are perturbed, each with its own draws
            pairs += augment(split.pairs, copies, seed + 1, mask, neighbours, p_replace)
        log.info(f"transfer set: {len(split)} sentences and {len(extra)} perturbed copies "
                              f"(--augment {copies}), the copies labeled by the teacher alone")
        for i in range(min(3, len(split))):  # the first sentence's copies come first, one per --augment
            log.debug(f"copy of sentence {i}: {split.texts[i][:70]!r} -> {extra[i * copies][:70]!r}")
    texts += extra
    labels += [IGNORE_LABEL] * len(extra)
    if unlabeled is not None:
        texts += unlabeled.texts
        if pairs is not None:
            pairs += unlabeled.pairs
        labels += [IGNORE_LABEL] * len(unlabeled)
        log.info(f"transfer set: {len(split)} labeled and {len(unlabeled)} unlabeled examples "
                              f"(--transfer_data), the unlabeled ones labeled by the teacher alone")
    return TransferSet(texts, pairs, labels, len(extra), len(unlabeled) if unlabeled is not None else 0)


# ---------------------------------------------------------------- 5. the training data


def training_data(job: Job, distill: DistillConfig, plan: Plan, teacher: Teacher | None, tokenizer,
                  transfer: TransferSet, projection: nn.Module | None,
                  keep_teacher: bool) -> tuple[EncodedSplit, DistillationObjective, dict]:
    """The encoded transfer set with the teacher's targets (cached logits in the batches, or the
    teacher itself in the objective), the objective, and what metrics.json records of them."""
    runs = plan.runs_teacher
    tokenizers = {MODEL: tokenizer, TEACHER: teacher.tokenizer} if runs else {MODEL: tokenizer}
    encodings = encode_for_models(transfer.texts, tokenizers, job.data.max_length, transfer.pairs)
    extra = {
        "teacher_model": distill.teacher_model if runs else None,
        "teacher_num_parameters": count_parameters(teacher.model) if runs else None,
        "teacher_logits": plan.teacher_use if runs else None,
        "student_init": plan.describe(),
        "loss": {**plan.spec.to_json(), "stage": distill.stage},
        "augmented_examples": 0,
        "temperature": distill.temperature,
        "alpha": distill.alpha,
    }
    if not runs:
        return EncodedSplit(encodings, transfer.labels), DistillationObjective(plan.spec, None, projection), extra
    accelerator = job.accelerator
    # evaluation_mode: device placement and autocast, but no DDP wrapper (it gets no gradients).
    model = accelerator.prepare_model(teacher.model, evaluation_mode=True)
    if plan.teacher_use == ONLINE:
        return EncodedSplit(encodings, transfer.labels), DistillationObjective(plan.spec, model, projection), extra
    logits, extra["teacher_cache"] = cached_teacher_logits(job, distill, model, teacher, encodings[TEACHER], transfer)
    if not keep_teacher:
        teacher.model = None  # not needed again: free its memory before the student trains
    del model
    data = EncodedSplit({MODEL: encodings[MODEL]}, transfer.labels, teacher_logits=logits)
    return data, DistillationObjective(plan.spec, None, projection), extra


def cached_teacher_logits(job: Job, distill: DistillConfig, model, teacher: Teacher, encoding: Encoding,
                          transfer: TransferSet) -> tuple[torch.Tensor, dict]:
    """The teacher's logits for the transfer set, cached part by part: the training sentences, the
    perturbed copies, the unlabeled texts. Runs that share a part share its pass: a run with --augment
    reuses the training sentences' logits of a run without, and each seed's copies are its own part."""
    sentences = len(transfer.texts) - transfer.copies - transfer.unlabeled
    parts = [("training sentences", job.data.data_path, sentences),
             ("perturbed copies", f"{job.data.data_path} (--augment copies)", transfer.copies),
             ("unlabeled texts", distill.transfer_data, transfer.unlabeled)]
    logits, records, start = [], [], 0
    for what, source, count in parts:
        if not count:
            continue
        part = encoding_rows(encoding, start, start + count)
        start += count
        key, description = cache_key(distill.teacher_model, model.config, teacher.tokenizer, part,
                                     job.data.max_length, source, job.accelerator.mixed_precision)
        values, record = teacher_logits(model, part, key, description, distill.cache_dir, job.train.eval_batch_size,
                                        job.accelerator)
        logits.append(values)
        records.append({"part": what, "examples": count, **record})
    summary = {"path": records[0]["path"], "key": records[0]["key"], "reused": all(r["reused"] for r in records),
               "seconds": sum(r["seconds"] for r in records), "parts": records}
    return torch.cat(logits), summary


# ---------------------------------------------------------------- 7. with and without the teacher


def kd_vs_no_kd(kd: dict, no_kd: dict, task: Task) -> dict:
    """The two runs of --compare_no_kd: validation metrics of each kept epoch (accuracy and F1, or
    Pearson and Spearman for a regression task) and the differences."""
    rows = {}
    for name in task.compared_metrics:
        with_kd = (kd.get("validation") or {}).get(name)
        without = (no_kd.get("validation") or {}).get(name)
        if with_kd is not None and without is not None:
            rows[name] = {"kd": with_kd, "no_kd": without, "difference": with_kd - without}
    rows["train_seconds"] = {"kd": kd["total_train_seconds"], "no_kd": no_kd["total_train_seconds"],
                             "difference": kd["total_train_seconds"] - no_kd["total_train_seconds"]}
    return rows


def format_kd_vs_no_kd(rows: dict) -> str:
    lines = ["", "same student, same start, with and without the teacher (validation split):",
             f"{'':<16}{'with KD':>12}{'without KD':>12}{'difference':>12}"]
    for name, row in rows.items():
        fmt = (lambda v: f"{v:.1f} s") if name == "train_seconds" else (lambda v: f"{100 * v:.2f}")
        diff = f"{row['difference']:+.1f} s" if name == "train_seconds" else f"{100 * row['difference']:+.2f}"
        lines.append(f"{name:<16}{fmt(row['kd']):>12}{fmt(row['no_kd']):>12}{diff:>12}")
    return "\n".join(lines)
