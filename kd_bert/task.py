"""The task a model solves: classification into named classes, or regression onto one score.

Hugging Face reads a model with one output (num_labels == 1) as a regression model; so does this
toolkit. Each kind is one class, Classification or Regression, and Task.of picks it from the label
names. Every step that differs between the kinds asks the run's Task: how labels are read and whether
samples are stratified, the head, which gold term the loss has, which metrics a validation reports and
which picks the best model, how predictions are read from logits and written, how a student follows
its teacher, and what the tables, the report and the model card show. No module outside this one asks
which kind it has, so a new kind (multi-label, say) is one more subclass answering the same questions.

Nothing here imports torch or numpy at module level: each answer that computes imports what it uses
from data/label_values.py and scoring/, which know no task kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .data.label_values import REGRESSION_LABEL  # the one output of a regression model, as its config names it
from .errors import UserError

CLASSIFICATION_ONLY = ("f1", "precision", "recall")
REGRESSION_ONLY = ("pearson", "spearman", "mse")


@dataclass(frozen=True)
class Task:
    """What every task kind answers; Classification and Regression below are the kinds."""

    label_names: tuple[str, ...]

    kind: ClassVar[str]
    problem_type: ClassVar[str]  # config.problem_type, so that plain transformers computes the matching loss
    hub_tag: ClassVar[str]  # the model card's tag for the kind
    gold_term: ClassVar[str]  # the loss term that learns from gold labels
    quality_metrics: ClassVar[tuple[str, ...]]  # what an epoch's line reports, in this order
    compared_metrics: ClassVar[tuple[str, ...]]  # what --compare_no_kd sets side by side
    card_metrics: ClassVar[tuple[str, ...]]  # what the model card reports of the kept epoch
    main_metric: ClassVar[str]  # the one metric a short comparison (model vs int8) shows
    curves: ClassVar[tuple[tuple[str, str], ...]]  # (metric, name) drawn per epoch beside the losses
    table_rows: ClassVar[tuple[tuple[str, str], ...]]  # (row label, metric) of evaluate.py's tables
    calibration_rows: ClassVar[tuple[tuple[str, str], ...]]  # added to the teacher-student table
    follows_key: ClassVar[str]  # how closely an ONNX or int8 version follows its model
    follows_row: ClassVar[tuple[str, str, str]]  # (row label, key, format) of that in the ONNX table
    stratified: ClassVar[bool]  # whether samples and held-out splits keep each class's share
    not_stratified_because: ClassVar[str] = ""  # why not, as a sample's note says
    labels_are_scores: ClassVar[bool]  # what the data holds for this task: numeric scores, or classes
    unused_settings: ClassVar[tuple[str, ...]] = ()  # distillation settings the task's KD term never reads
    kd_note: ClassVar[str | None] = None  # what a distillation logs of the task's KD term, if anything

    @staticmethod
    def of(label_names) -> Task:
        names = tuple(label_names)
        return Regression(names) if len(names) == 1 else Classification(names)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def head_config(self) -> dict:
        """The config entries that size a classification head and name its outputs."""
        return {"num_labels": self.num_labels, "id2label": dict(enumerate(self.label_names)),
                "label2id": {name: i for i, name in enumerate(self.label_names)}}

    def accepts(self, scores: bool, training: bool) -> bool:
        """Whether a model of this task can learn from (training) or be scored on labels that are numeric
        scores (`scores`, data.labels.has_scores) or classes."""
        return scores == self.labels_are_scores

    def best_model_metric(self, metric: str) -> tuple[str, str | None]:
        """--metric_for_best_model for this task: (the metric, a note to print or None)."""
        return metric, None

    def unused_setting(self, name: str) -> str:
        """Why --search must leave out `name`, one of unused_settings."""
        return f"this is a {self.kind} task, whose KD term reads no {name}"


@dataclass(frozen=True)
class Classification(Task):
    kind = "classification"
    problem_type = "single_label_classification"
    hub_tag = "text-classification"
    gold_term = "ce"
    quality_metrics = ("accuracy", "f1", "loss")
    compared_metrics = ("accuracy", "f1")
    card_metrics = ("accuracy", "f1", "precision", "recall")
    main_metric = "accuracy"
    curves = (("accuracy", "accuracy"), ("f1", "F1"))
    table_rows = (("accuracy", "accuracy"), ("f1", "f1"))
    calibration_rows = (("calibration error", "expected_calibration_error"),)
    follows_key = "agreement_with_fp32"
    follows_row = ("agreement with model", "agreement_with_fp32", ".2%")
    stratified = True
    labels_are_scores = False

    # ------------------------------------------------------------ what it is

    def describe(self) -> str:
        """How a model of this task is named in messages."""
        return f"a classifier ({self.num_labels} labels)"

    def describe_in_full(self) -> str:
        """How the model card names it."""
        return f"a text classifier ({self.num_labels} labels: {first_names(self.label_names)})"

    # ------------------------------------------------------------ data

    def encode_labels(self, values: list, where: str, labels_from: str, column: str | None) -> list[int]:
        from .data.label_values import class_ids

        return class_ids(values, list(self.label_names), where, labels_from, column)

    def summarize_labels(self, labels: list[int]) -> str:
        from collections import Counter

        return "labels " + ", ".join(f"{self.label_names[c]} {n}" for c, n in sorted(Counter(labels).items()))

    # ------------------------------------------------------------ training

    def best_model_metric(self, metric: str) -> tuple[str, str | None]:
        if metric in REGRESSION_ONLY:
            raise UserError(f"--metric_for_best_model {metric} is for a regression task, and this model is a "
                            f"classifier; use accuracy, f1, precision, recall or loss")
        return metric, None

    # ------------------------------------------------------------ scoring

    def evaluate(self, labels, logits) -> dict:
        """A validation's metrics from gold labels and logits (n, num_labels), and the loss the model
        trains on: cross-entropy over classes."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        from .scoring.metrics import classification_metrics

        labels = np.asarray(labels)
        metrics = classification_metrics(labels, logits.argmax(-1), list(self.label_names))
        metrics["loss"] = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
        return metrics

    def metrics(self, labels, logits) -> dict:
        """What evaluate.py reports of a model's logits on labeled data, calibration included."""
        from .scoring.metrics import classification_metrics, expected_calibration_error, softmax

        return {**classification_metrics(labels, logits.argmax(-1), list(self.label_names)),
                "expected_calibration_error": expected_calibration_error(softmax(logits), labels)}

    def predictions(self, logits):
        """What a model predicts from its logits (n, num_labels): the class id."""
        return logits.argmax(-1)

    def formatted_predictions(self, logits) -> list[str]:
        """The predictions as a predictions file writes them."""
        return [f"{int(p)}" for p in self.predictions(logits)]

    def follows(self, reference, logits) -> dict:
        """How often the predicted classes agree."""
        from .scoring.metrics import agreement

        return {"agreement_with_fp32": agreement(reference, logits)}

    def describe_follows(self, result: dict) -> str:
        return f"predictions agree on {result['agreement_with_fp32']:.2%}"

    def compare(self, teacher_logits, student_logits) -> dict:
        """How a student follows its teacher: how often they agree, and the KL from the teacher's
        distribution to the student's."""
        from .scoring.metrics import agreement, mean_kl

        return {"agreement": agreement(teacher_logits, student_logits),
                "kl_teacher_to_student": mean_kl(teacher_logits, student_logits)}

    def describe_comparison(self, comparison: dict) -> str:
        return (f"the student predicts the teacher's label on {comparison['agreement']:.1%} of examples; "
                f"KL(teacher || student) {comparison['kl_teacher_to_student']:.4f} nats per example")

    # ------------------------------------------------------------ what a user reads

    def format_metrics(self, metrics: dict) -> str:
        """The terminal report: summary, per-class report and confusion matrix."""
        from .scoring.metrics import format_class_report

        return format_class_report(metrics)

    def report_section(self, folder, result: dict, logits: dict, labels) -> tuple[list[str], list[str]]:
        """report.md's metrics and the files beside it: (files written, lines)."""
        from .scoring.report import classes_section

        return classes_section(folder, result, logits, labels)

    def text_predictions(self, texts: list[str], logits, top_k: int) -> list[dict]:
        """The top-k labels and their probabilities for each text."""
        from .scoring.prediction import top_labels

        return top_labels(texts, logits, list(self.label_names), top_k)

    def describe_text_prediction(self, prediction: dict) -> list[str]:
        return [f"  {choice['probability']:7.2%}  {choice['label']}" for choice in prediction["top_k"]]

    def loss_note(self, alpha: float, temperature: float) -> str:
        """What the weights of the logit terms mean, in the run's own numbers (the model card)."""
        return (f" (alpha {alpha:g} weighs the KD term, temperature {temperature:g}; "
                f"1 - alpha weighs the cross-entropy with the gold labels)")

    def averaging_note(self, validation: dict) -> list[str]:
        """How the card's F1, precision and recall are averaged."""
        if validation.get("average") == "binary":
            return ["", f"F1, precision and recall are those of the label `{self.label_names[1]}` (id 1)."]
        if validation.get("average"):
            return ["", f"F1, precision and recall are {validation['average']}-averaged over the labels."]
        return []

    def pipeline_returns(self) -> str:
        """What transformers' text-classification pipeline returns for this model (the model card)."""
        return f"the top label ({first_names(self.label_names)}) and its probability"


@dataclass(frozen=True)
class Regression(Task):
    kind = "regression"
    problem_type = "regression"
    hub_tag = "regression"
    gold_term = "mse"
    quality_metrics = REGRESSION_ONLY
    compared_metrics = ("pearson", "spearman")
    card_metrics = REGRESSION_ONLY
    main_metric = "pearson"
    curves = (("pearson", "Pearson"), ("spearman", "Spearman"))
    table_rows = (("pearson", "pearson"), ("spearman", "spearman"), ("mse", "mse"))
    calibration_rows = ()  # no classes: no calibration either
    follows_key = "pearson_with_fp32"
    follows_row = ("pearson with model", "pearson_with_fp32", ".4f")
    stratified = False
    not_stratified_because = "the labels are scores"
    labels_are_scores = True
    # The KD term is the MSE between two scores (see losses.distillation_loss).
    unused_settings = ("temperature", "kd_loss")
    kd_note = ("regression task (one output): the KD term is the MSE between the student's and the teacher's "
               "scores; --kd_loss and --temperature do not apply")

    # ------------------------------------------------------------ what it is

    def describe(self) -> str:
        return "a regression model (one output, a score)"

    def describe_in_full(self) -> str:
        return self.describe()

    def head_config(self) -> dict:
        return {**super().head_config(), "problem_type": "regression"}

    def accepts(self, scores: bool, training: bool) -> bool:
        # A regression model may be scored on whole-number labels, read as numbers.
        return scores or not training

    # ------------------------------------------------------------ data

    def encode_labels(self, values: list, where: str, labels_from: str, column: str | None) -> list[float]:
        from .data.label_values import scores

        return scores(values, where, self.label_names[0])

    def summarize_labels(self, labels: list[float]) -> str:
        return f"scores {min(labels):.3g} to {max(labels):.3g}"

    def unused_setting(self, name: str) -> str:
        return (f"this is a regression task (one output), whose KD term is the MSE between the student's and the "
                f"teacher's scores and reads no {name}")

    # ------------------------------------------------------------ training

    def best_model_metric(self, metric: str) -> tuple[str, str | None]:
        """The default accuracy means Pearson's r; the classification-only metrics are refused."""
        if metric == "accuracy":
            return "pearson", ("regression task (one output): the best model is picked by validation pearson, "
                               "not accuracy; --metric_for_best_model spearman or mse picks another")
        if metric in CLASSIFICATION_ONLY:
            raise UserError(f"--metric_for_best_model {metric} needs classes, and this is a regression task "
                            f"(one output); use pearson, spearman, mse or loss")
        return metric, None

    # ------------------------------------------------------------ scoring

    def evaluate(self, labels, logits) -> dict:
        """Pearson, Spearman and MSE of the scores (logits: (n, 1)), and the loss the model trains on: MSE."""
        import numpy as np

        from .scoring.metrics import regression_metrics

        metrics = regression_metrics(np.asarray(labels), logits[:, 0])
        metrics["loss"] = metrics["mse"]  # the gold term the model trains on
        return metrics

    def metrics(self, labels, logits) -> dict:
        from .scoring.metrics import regression_metrics

        return regression_metrics(labels, logits[:, 0])

    def predictions(self, logits):
        """A regression model's one output is the prediction itself: the score."""
        return logits[:, 0]

    def formatted_predictions(self, logits) -> list[str]:
        return [f"{float(p):.4f}" for p in self.predictions(logits)]

    def follows(self, reference, logits) -> dict:
        """Pearson of the scores."""
        from .scoring.metrics import pearson

        return {"pearson_with_fp32": pearson(reference[:, 0], logits[:, 0])}

    def describe_follows(self, result: dict) -> str:
        return f"pearson {result['pearson_with_fp32']:.4f}"

    def compare(self, teacher_logits, student_logits) -> dict:
        """The MSE and correlation of the teacher's and the student's scores."""
        from .scoring.metrics import score_comparison

        return score_comparison(teacher_logits[:, 0], student_logits[:, 0])

    def describe_comparison(self, comparison: dict) -> str:
        return (f"the student's scores correlate with the teacher's at Pearson "
                f"{comparison['pearson_with_teacher']:.4f}; MSE between them "
                f"{comparison['mse_teacher_to_student']:.4f}")

    # ------------------------------------------------------------ what a user reads

    def format_metrics(self, metrics: dict) -> str:
        """The terminal report: the correlations and the MSE."""
        from .scoring.metrics import format_score_report

        return format_score_report(metrics)

    def report_section(self, folder, result: dict, logits: dict, labels) -> tuple[list[str], list[str]]:
        """No classes, so no per-class table, confusion matrix or calibration: the scores drawn."""
        from .scoring.report import scores_section

        return scores_section(folder, result, logits, labels)

    def text_predictions(self, texts: list[str], logits, top_k: int) -> list[dict]:
        """No softmax, no top-k: the score of each text."""
        from .scoring.prediction import scored_texts

        return scored_texts(texts, logits)

    def describe_text_prediction(self, prediction: dict) -> list[str]:
        return [f"  score {prediction['score']:.3f}"]

    def loss_note(self, alpha: float, temperature: float) -> str:
        return f" (alpha {alpha:g}: the MSE to the teacher's scores; 1 - alpha: the MSE to the gold scores)"

    def averaging_note(self, validation: dict) -> list[str]:
        return []

    def pipeline_returns(self) -> str:
        return f"the predicted score (label '{REGRESSION_LABEL}')"


def first_names(label_names, shown: int = 10) -> str:
    """The first `shown` label names, and how many more."""
    more = f", ... ({len(label_names) - shown} more)" if len(label_names) > shown else ""
    return ", ".join(label_names[:shown]) + more
