"""The teacher's job (trainer_teacher.py): fine-tune a classifier on the data's train split and keep
its best epoch in <output_dir>/teacher."""

from __future__ import annotations

from ..config import DataConfig, TrainConfig
from ..data.labels import infer_label_names
from ..data.splits import load_data
from ..distillation.objectives import DistillationObjective, LossSpec
from ..models.load import (
    check_max_length,
    load_classifier,
    load_tokenizer,
)
from ..results import TrainResult
from ..safety.outputs import check_outputs, claim_output
from ..safety.preflight import reads_of
from .job import Job, Learner, encode_split, fit, resume_point, set_task, training_splits


def train_teacher(model_name_or_path: str, data: DataConfig, train: TrainConfig) -> TrainResult:
    """Fine-tune model_name_or_path on the data's train split; save the best epoch to <output_dir>/teacher."""
    check_outputs(train, ["teacher"], reads=reads_of(model_name_or_path=model_name_or_path, data_path=data.data_path))
    check_max_length(data.max_length, [(model_name_or_path, "--model_name_or_path")])
    with claim_output(train, ["teacher"]):
        return _train_teacher(model_name_or_path, data, train)


def _train_teacher(model_name_or_path: str, data: DataConfig, train: TrainConfig) -> TrainResult:
    job = Job.start(data, train, {"model_name_or_path": model_name_or_path, **data.to_flags(), **train.to_flags()})
    resume_point(job, "teacher")
    raw, columns = load_data(data)
    task = set_task(job, infer_label_names(raw, columns, data.label_names))
    train_split, eval_split = training_splits(job, raw, columns, list(task.label_names))
    tokenizer = load_tokenizer(model_name_or_path, "--model_name_or_path")
    model = load_classifier(model_name_or_path, "--model_name_or_path", list(task.label_names), head=train.head)
    objective = DistillationObjective(LossSpec(task=task.kind))
    return fit(job, Learner("teacher", model_name_or_path, model, tokenizer), encode_split(train_split, tokenizer, data),
               eval_split, objective, {"head": train.head})
