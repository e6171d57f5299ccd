"""kd-bert: knowledge distillation for BERT text classifiers, as a Python API.

    from . import DataConfig, DistillConfig, EvalConfig, TrainConfig, distill, evaluate, train_teacher

    data = DataConfig(data_path="./data/sst2")
    teacher = train_teacher("bert-large-uncased", data, TrainConfig(output_dir="./models"))
    student = distill(DistillConfig(teacher_model=str(teacher.model_dir)), data,
                      TrainConfig(output_dir="./models", learning_rate=5e-5))
    print(evaluate(EvalConfig(model=str(student.student.model_dir)), data).metrics["accuracy"])

A search over the distillation settings (needs Optuna) takes the same configs:

    result = sweep(SweepConfig(trials=16), DistillConfig(teacher_model="./models/teacher"), data,
                   TrainConfig(output_dir="./models/sweep", selection_split=0.1))

The four entry scripts are thin parsers over these functions.
"""

from . import log  # the package's output: set up before any job logs
from .config import DataConfig, DistillConfig, EvalConfig, SweepConfig, TrainConfig
from .errors import UserError
from .results import DistillResult, EvalResult, SweepResult, TrainResult
from .version import __version__  # noqa: F401  (kd_bert.__version__)

__all__ = ["DataConfig", "DistillConfig", "DistillResult", "EvalConfig", "EvalResult", "SweepConfig", "SweepResult",
           "TrainConfig", "TrainResult", "UserError", "distill", "evaluate", "log", "sweep", "train_teacher"]

# The jobs import torch and transformers (several seconds). They load on first use, so that importing
# the configs, or a script's --help, stays instant.
_JOBS = {"train_teacher": ".jobs.teacher", "distill": ".jobs.distill", "evaluate": ".jobs.evaluate",
         "sweep": ".jobs.sweep"}


def __getattr__(name: str):
    if name in _JOBS:
        from importlib import import_module

        return getattr(import_module(_JOBS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
