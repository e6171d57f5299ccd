"""Classification metrics, computed from the confusion matrix with numpy; and for a regression task
(one output, a score), Pearson and Spearman correlation and the mean squared error.

Not scikit-learn's metrics: importing sklearn.metrics adds about 0.9 s to every script's start
(on a 2-core CPU, after torch and transformers), for sums over one small matrix. The test suite checks
these numbers against scikit-learn's. Not the `evaluate` package either: its evaluate.load(...)
downloads metric code from the hub, and this project's evaluate.py shadows that package.
"""

from __future__ import annotations

import numpy as np

# Metrics where a larger value is better; anything else (loss, mse) is better smaller.
GREATER_IS_BETTER = ("accuracy", "f1", "precision", "recall", "agreement", "pearson", "spearman")


def confusion_matrix(labels, predictions, num_labels: int) -> np.ndarray:
    """(num_labels, num_labels) counts; rows: gold label, columns: predicted label."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    return np.bincount(labels * num_labels + predictions, minlength=num_labels**2).reshape(num_labels, num_labels)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (a class never predicted or never seen)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_metrics(labels, predictions, label_names: list[str]) -> dict:
    """Accuracy, precision, recall, F1 (binary on the label with id 1 for two labels, macro-averaged
    otherwise), the per-class report and the confusion matrix (rows: gold, columns: predicted)."""
    matrix = confusion_matrix(labels, predictions, len(label_names))
    true_pos = np.diag(matrix).astype(np.float64)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(true_pos, predicted), _ratio(true_pos, support)
    f1 = _ratio(2 * true_pos, support + predicted)  # = 2PR / (P + R), and 0 where both are 0
    average = "binary" if len(label_names) == 2 else "macro"
    pick = (lambda v: float(v[1])) if average == "binary" else (lambda v: float(v.mean()))
    return {
        "accuracy": float(true_pos.sum() / max(matrix.sum(), 1)),
        "precision": pick(precision),
        "recall": pick(recall),
        "f1": pick(f1),
        "average": average,
        "num_examples": int(matrix.sum()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1-score": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": matrix.tolist(),
        "label_names": list(label_names),
    }


def pearson(x, y) -> float:
    """Pearson's r = sum((x - mean x)(y - mean y)) / sqrt(sum((x - mean x)^2) sum((y - mean y)^2)).
    0 where either side is constant: no linear relation can be measured, and a model that predicts
    one value for everything must never look best (scipy returns NaN there)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denominator) if denominator > 0 else 0.0


def average_ranks(values) -> np.ndarray:
    """1-based ranks, tied values sharing the average of the ranks they span ([3, 1, 3] -> [2.5, 1, 2.5])."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], len(values))  # one past each group's last position
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(starts_group) - 1]  # mean of ranks start+1 .. end
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def regression_metrics(labels, scores) -> dict:
    """Pearson and Spearman correlation of the predicted scores with the gold ones (STS-B's metrics),
    and the mean squared error."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return {"pearson": pearson(scores, labels), "spearman": spearman(scores, labels),
            "mse": float(np.mean((scores - labels) ** 2)), "num_examples": int(len(labels))}


def score_comparison(teacher_scores, student_scores) -> dict:
    """How closely a regression student follows its teacher: the MSE between their scores and their
    Pearson correlation (what agreement and KL are for classifiers)."""
    t, s = np.asarray(teacher_scores, dtype=np.float64), np.asarray(student_scores, dtype=np.float64)
    return {"mse_teacher_to_student": float(np.mean((t - s) ** 2)), "pearson_with_teacher": pearson(t, s)}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels, bins: int = 15) -> float:
    """ECE: the confidence-vs-accuracy gap over `bins` equal-width confidence bins, weighted by the
    share of examples in each bin (Guo et al., 2017)."""
    confidence, predicted = probs.max(axis=-1), probs.argmax(axis=-1)
    correct = predicted == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)  # confidence 1.0 goes in the last bin
    gap = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)


def agreement(teacher_logits: np.ndarray, student_logits: np.ndarray) -> float:
    """How often the student predicts the teacher's label."""
    return float(np.mean(teacher_logits.argmax(-1) == student_logits.argmax(-1)))


def mean_kl(teacher_logits: np.ndarray, student_logits: np.ndarray) -> float:
    """KL(p_teacher || p_student) at temperature 1, averaged over examples (nats)."""
    t = teacher_logits.astype(np.float64)
    s = student_logits.astype(np.float64)
    log_pt = t - np.logaddexp.reduce(t, axis=-1, keepdims=True)
    log_ps = s - np.logaddexp.reduce(s, axis=-1, keepdims=True)
    return float(np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=-1)))


def is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new > best if metric in GREATER_IS_BETTER else new < best


def format_score_report(metrics: dict) -> str:
    """A regression model's metrics as plain text: the correlations and the MSE."""
    return "\n".join([f"examples   {metrics['num_examples']}", f"pearson    {metrics['pearson']:.4f}",
                      f"spearman   {metrics['spearman']:.4f}", f"mse        {metrics['mse']:.4f}"])


def format_class_report(metrics: dict) -> str:
    """A classifier's metrics as a plain-text table: summary, per-class report, confusion matrix."""
    names = metrics["label_names"]
    avg = "binary, positive = " + names[1] if metrics["average"] == "binary" else "macro"
    lines = [
        f"examples   {metrics['num_examples']}",
        f"accuracy   {metrics['accuracy']:.4f}",
        f"precision  {metrics['precision']:.4f}  ({avg})",
        f"recall     {metrics['recall']:.4f}",
        f"f1         {metrics['f1']:.4f}",
        "",
    ]
    width = max(12, *(len(n) + 2 for n in names))
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in names:
        row = metrics["per_class"][name]
        lines.append(
            f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1-score']:>10.4f}{row['support']:>10d}"
        )
    lines += ["", "confusion matrix (rows: gold, columns: predicted)"]
    cell = max(8, *(len(n) + 2 for n in names))
    lines.append(" " * width + "".join(f"{n:>{cell}}" for n in names))
    for name, row in zip(names, metrics["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines)
