"""The task a model solves: classification into named classes, or regression onto one score.

Hugging Face reads a model with one output (num_labels == 1) as a regression model; so does this
toolkit. Every step that differs between the two asks the run's Task, made once from the label
names: which gold term the loss has, which metrics a validation reports and which picks the best
model, how predictions are read from logits, how a student follows its teacher, how a model is named
in messages. Nothing here imports torch or numpy at module level.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError

REGRESSION_LABEL = "score"  # the one output of a regression model, as its config names it
CLASSIFICATION_ONLY = ("f1", "precision", "recall")


@dataclass(frozen=True)
class Task:
    label_names: tuple[str, ...]

    @classmethod
    def of(cls, label_names) -> "Task":
        return cls(tuple(label_names))

    @property
    def regression(self) -> bool:
        return len(self.label_names) == 1

    @property
    def kind(self) -> str:
        return "regression" if self.regression else "classification"

    def describe(self) -> str:
        """How a model of this task is named in messages."""
        return "a regression model (one output, a score)" if self.regression \
            else f"a classifier ({len(self.label_names)} labels)"

    # ------------------------------------------------------------ training

    @property
    def gold_term(self) -> str:
        """The loss term that learns from gold labels: cross-entropy over classes, MSE on a score."""
        return "mse" if self.regression else "ce"

    @property
    def quality_metrics(self) -> tuple[str, ...]:
        """What an epoch's line and a comparison of two models report, in this order."""
        return ("pearson", "spearman", "mse") if self.regression else ("accuracy", "f1", "loss")

    @property
    def compared_metrics(self) -> tuple[str, ...]:
        """The metrics --compare_no_kd sets side by side."""
        return ("pearson", "spearman") if self.regression else ("accuracy", "f1")

    def best_model_metric(self, metric: str) -> tuple[str, str | None]:
        """--metric_for_best_model for this task: (the metric, a note to print or None). For a regression
        task the default accuracy means Pearson's r; the classification-only metrics are refused, and so
        are the regression ones for a classifier."""
        if self.regression:
            if metric == "accuracy":
                return "pearson", ("regression task (one output): the best model is picked by validation pearson, "
                                   "not accuracy; --metric_for_best_model spearman or mse picks another")
            if metric in CLASSIFICATION_ONLY:
                raise UserError(f"--metric_for_best_model {metric} needs classes, and this is a regression task "
                                f"(one output); use pearson, spearman, mse or loss")
        elif metric in ("pearson", "spearman", "mse"):
            raise UserError(f"--metric_for_best_model {metric} is for a regression task, and this model is a "
                            f"classifier; use accuracy, f1, precision, recall or loss")
        return metric, None

    # ------------------------------------------------------------ scoring

    def evaluate(self, labels, logits) -> dict:
        """A validation's metrics from gold labels and logits (n, num_labels), and the loss the model trains
        on: MSE for a score, cross-entropy over classes."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        from .scoring.metrics import classification_metrics, regression_metrics

        labels = np.asarray(labels)
        if self.regression:  # logits: (n, 1), the scores
            metrics = regression_metrics(labels, logits[:, 0])
            metrics["loss"] = metrics["mse"]  # the gold term the model trains on
            return metrics
        metrics = classification_metrics(labels, logits.argmax(-1), list(self.label_names))
        metrics["loss"] = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
        return metrics

    def predictions(self, logits):
        """What a model predicts from its logits (n, num_labels): the score, or the class id."""
        return logits[:, 0] if self.regression else logits.argmax(-1)

    def follows(self, reference, logits) -> dict:
        """How closely a model made from another (ONNX, int8) follows it: Pearson of the scores, or how
        often the predicted classes agree."""
        from .scoring.metrics import agreement, pearson

        if self.regression:
            return {"pearson_with_fp32": pearson(reference[:, 0], logits[:, 0])}
        return {"agreement_with_fp32": agreement(reference, logits)}

    @property
    def follows_key(self) -> str:
        return "pearson_with_fp32" if self.regression else "agreement_with_fp32"

    def compare(self, teacher_logits, student_logits) -> dict:
        """How a student follows its teacher: the MSE and correlation of their scores, or how often they
        agree and the KL from the teacher's distribution to the student's."""
        from .scoring.metrics import agreement, mean_kl, score_comparison

        if self.regression:
            return score_comparison(teacher_logits[:, 0], student_logits[:, 0])
        return {"agreement": agreement(teacher_logits, student_logits),
                "kl_teacher_to_student": mean_kl(teacher_logits, student_logits)}
