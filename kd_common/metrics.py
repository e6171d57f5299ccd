"""Classification metrics from scikit-learn.

Not the `evaluate` package: its evaluate.load(...) downloads metric code from the hub at run time,
and this project's own evaluate.py shadows that package whenever a script runs from the repo root.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

# Metrics where a larger value is better; anything else (loss) is better smaller.
GREATER_IS_BETTER = ("accuracy", "f1", "precision", "recall")


def classification_metrics(labels, predictions, label_names: list[str]) -> dict:
    """Accuracy, precision, recall, F1 (binary on the label with id 1 for two labels, macro-averaged
    otherwise), the per-class report and the confusion matrix (rows: gold, columns: predicted)."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    ids = list(range(len(label_names)))
    average = "binary" if len(label_names) == 2 else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=ids, average=average, pos_label=1, zero_division=0
    )
    report = classification_report(
        labels, predictions, labels=ids, target_names=label_names, output_dict=True, zero_division=0
    )
    per_class = {
        name: {k: float(v) if k != "support" else int(v) for k, v in report[name].items()} for name in label_names
    }
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "average": average,
        "num_examples": int(len(labels)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, predictions, labels=ids).tolist(),
        "label_names": list(label_names),
    }


def is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new > best if metric in GREATER_IS_BETTER else new < best


def format_report(metrics: dict) -> str:
    """The metrics as a plain-text table: summary, per-class report, confusion matrix."""
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


def format_comparison(results: dict[str, dict]) -> str:
    """evaluate.py results of several models ({name: result}) side by side, the first as reference."""
    names = list(results)
    first = results[names[0]]
    rows = [
        ("parameters", lambda r: f"{r['num_parameters'] / 1e6:.1f}M"),
        ("size vs first", lambda r: f"{r['num_parameters'] / first['num_parameters']:.0%}"),
        ("accuracy", lambda r: f"{r['accuracy']:.4f}"),
        ("f1", lambda r: f"{r['f1']:.4f}"),
        ("examples/s", lambda r: f"{r['examples_per_second']:.0f}"),
        ("speed vs first", lambda r: f"{r['examples_per_second'] / first['examples_per_second']:.2f}x"),
    ]
    width = max(16, *(len(n) + 2 for n in names))
    lines = [f"{'':<16}" + "".join(f"{n:>{width}}" for n in names)]
    for label, cell in rows:
        lines.append(f"{label:<16}" + "".join(f"{cell(results[n]):>{width}}" for n in names))
    return "\n".join(lines)
