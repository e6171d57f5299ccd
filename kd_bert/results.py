"""What the Python API returns: the paths a job wrote and what it measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainResult:
    """One trained model: its folder and its metrics.json (best epoch, validation metrics, history)."""

    role: str  # "teacher", "student" or "student_no_kd"
    model_dir: Path
    metrics: dict

    @property
    def validation(self) -> dict | None:
        """The kept model's validation metrics (accuracy, f1, ...), None without a validation split."""
        return self.metrics.get("validation")

    @property
    def history(self) -> list[dict]:
        """One record per epoch: training loss, speed and validation metrics."""
        return self.metrics["history"]


@dataclass
class DistillResult:
    """The distilled student, and with compare_no_kd the same student trained without the teacher."""

    student: TrainResult
    no_kd: TrainResult | None = None
    comparison: dict | None = None  # kd_vs_no_kd.json: validation metrics of both and the differences
    comparison_file: Path | None = None


@dataclass
class EvalResult:
    """evaluate(): every metric the script prints (the --output document), and the files written."""

    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)  # "output", "predictions", "report", "quantized"
    predictions: list[dict] | None = None  # for texts: each text's top-k labels and probabilities


@dataclass
class SweepResult:
    """sweep(): the best trial's student (chosen on the selection split, scored once on validation), the
    config that repeats it, and every trial."""

    model_dir: Path  # <output_dir>/student
    best_config: Path  # distilled-bert.py --config takes it
    trials_file: Path  # trials.csv
    trials: list[dict]  # one row per trial: its number, state, settings, score, updates and seconds
    best_trial: int
    best_settings: dict
    selection_score: float  # the metric that compares trials, on the selection split
    validation: dict  # the best student's metrics on the validation split, measured once
