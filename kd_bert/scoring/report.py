"""Files a user reads after a run: charts (PNG), per-class tables (CSV) and a short markdown report.

matplotlib is imported only here, and only when a chart is drawn (the Agg backend: no display).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..safety.atomic import write_atomically, write_json, write_text_atomically
from .metrics import expected_calibration_error, softmax

RELIABILITY_BINS = 15


def _pyplot():
    # matplotlib takes about a second to import: only runs that draw a chart pay for it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def confusion_matrix_png(matrix: list[list[int]], label_names: list[str], title: str) -> bytes:
    """Rows normalized to the share of each gold class, so small classes show as clearly as big
    ones; counts are written in the cells while there are few enough classes to read them."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(label_names)
    side = min(max(5.0, 0.22 * n + 2.5), 26.0)  # 77 classes: about 19 inches, labels at 8 pt
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    font = min(10, max(5, int(0.45 * side * 72 / n)))  # about half a row's height, in points
    ax.set_xticks(range(n), labels=label_names, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels=label_names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=font,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold class")
    return _png(fig)


def reliability(logits: np.ndarray, labels: list[int], bins: int = RELIABILITY_BINS) -> list[dict]:
    """Per confidence bin: its range, number of examples, mean confidence and accuracy."""
    probs = softmax(logits)
    confidence, correct = probs.max(axis=-1), probs.argmax(axis=-1) == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        rows.append({"low": b / bins, "high": (b + 1) / bins, "count": int(members.sum()),
                     "confidence": float(confidence[members].mean()) if members.any() else None,
                     "accuracy": float(correct[members].mean()) if members.any() else None})
    return rows


def reliability_png(curves: dict[str, list[dict]], eces: dict[str, float]) -> bytes:
    """Accuracy against confidence per bin for each model; the diagonal is perfect calibration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfectly calibrated")
    for name, rows in curves.items():
        used = [r for r in rows if r["count"]]
        ax.plot([r["confidence"] for r in used], [r["accuracy"] for r in used], marker="o",
                label=f"{name} (ECE {eces[name]:.3f})")
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    ax.set_title("reliability diagram")
    return _png(fig)


def scores_png(scores: dict[str, np.ndarray], labels: list[float]) -> bytes:
    """A regression model's predicted score against the gold one, a point per example, for each model;
    the diagonal is a perfect prediction."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    gold = np.asarray(labels, dtype=np.float64)
    low, high = float(gold.min()), float(gold.max())
    ax.plot([low, high], [low, high], linestyle="--", color="#999999", label="perfect prediction")
    for name, values in scores.items():
        ax.scatter(gold, values, s=8, alpha=0.6, label=name)
    ax.set_xlabel("gold score")
    ax.set_ylabel("predicted score")
    ax.legend(loc="upper left")
    ax.set_title("predicted against gold scores")
    return _png(fig)


def per_class_csv(metrics: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["label", "precision", "recall", "f1", "support"])
    for name in metrics["label_names"]:
        row = metrics["per_class"][name]
        writer.writerow([name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1-score']:.4f}",
                         row["support"]])
    return out.getvalue()


def training_curves_png(history: list[dict], role: str, curves: tuple[tuple[str, str], ...]) -> bytes:
    """Training loss, validation loss and the validation metrics `curves` names ((metric, name) pairs, the
    task's: accuracy and F1, or Pearson and Spearman for a regression model) per epoch."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", label="training loss")
    if any("eval" in h for h in history):
        evaluated = [h for h in history if "eval" in h]
        left.plot([h["epoch"] for h in evaluated], [h["eval"]["loss"] for h in evaluated], marker="o",
                  label="validation loss")
        for (key, name), marker in zip(curves, "os"):
            right.plot([h["epoch"] for h in evaluated], [h["eval"][key] for h in evaluated], marker=marker,
                       label=f"validation {name}")
        right.legend()
    left.set_xlabel("epoch")
    left.set_title(f"{role}: loss")
    left.legend()
    right.set_xlabel("epoch")
    right.set_title(f"{role}: validation metrics")
    for ax in (left, right):
        ax.set_xticks(epochs)
    return _png(fig)


def write_evaluation_report(folder: str | Path, result: dict, logits: dict[str, np.ndarray], labels: list[int] | None,
                            comparison_table: str | None, task) -> list[str]:
    """metrics.json, report.md and the files of the task's section (Task.report_section: classes_section
    or scores_section) into `folder`; logits holds each scored model's logits by name. Returns the names
    written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "metrics.json", result)
    written = ["metrics.json"]
    lines = [f"# Evaluation of {result['model']}", "",
             f"Split `{result['split']}` of `{result['data_path']}`: {result['num_examples']} examples, "
             f"device {result['device']}, batch size {result['batch_size']}.", ""]
    if labels is None:
        lines.append("The split has no labels: no metrics.")
    else:
        files, section = task.report_section(folder, result, logits, labels)
        written += files
        lines += section
    if comparison_table:
        lines += ["", "## Student and teacher", "", "```", comparison_table, "```"]
    if "quantized" in result:
        q = result["quantized"]
        main = task.main_metric
        lines += ["", "## ONNX Runtime int8 (dynamic quantization)", "", "| | model | int8 |", "|---|---|---|",
                  f"| {main} | {result.get(main, float('nan')):.4f} | {q.get(main, float('nan')):.4f} |",
                  f"| examples/s | {result['examples_per_second']:.0f} | {q['examples_per_second']:.0f} |"]
        if "latency_p50_ms" in q and "latency_p50_ms" in result:
            lines.append(f"| latency p50 (batch 1) | {result['latency_p50_ms']:.1f} ms | {q['latency_p50_ms']:.1f} ms |")
    write_text_atomically(folder / "report.md", "\n".join(lines) + "\n")
    return written + ["report.md"]


def scores_section(folder: Path, result: dict, logits: dict[str, np.ndarray], labels: list[float]
                   ) -> tuple[list[str], list[str]]:
    """A regression model's part of the report: scores.png (predicted against gold scores) and the
    correlations and MSE. Returns (files written, report lines)."""
    write_atomically(folder / "scores.png", scores_png({name: values[:, 0] for name, values in logits.items()},
                                                       labels))
    lines = ["| metric | value |", "|---|---|", f"| Pearson | {result['pearson']:.4f} |",
             f"| Spearman | {result['spearman']:.4f} |", f"| mean squared error | {result['mse']:.4f} |",
             f"| examples/s | {result['examples_per_second']:.0f} |", *_latency_row(result)]
    return ["scores.png"], lines + ["", "![predicted against gold scores](scores.png)"]


def classes_section(folder: Path, result: dict, logits: dict[str, np.ndarray], labels: list[int]
                    ) -> tuple[list[str], list[str]]:
    """A classifier's part of the report: per_class.csv, confusion_matrix.png, reliability.png (a curve
    for each model in logits) and the metrics. Returns (files written, report lines)."""
    write_atomically(folder / "confusion_matrix.png",
                     confusion_matrix_png(result["confusion_matrix"], result["label_names"], f"{result['model']}"))
    write_text_atomically(folder / "per_class.csv", per_class_csv(result))
    curves = {name: reliability(values, labels) for name, values in logits.items()}
    eces = {name: expected_calibration_error(softmax(values), labels) for name, values in logits.items()}
    write_atomically(folder / "reliability.png", reliability_png(curves, eces))
    lines = [
        "| metric | value |", "|---|---|",
        f"| accuracy | {result['accuracy']:.4f} |",
        f"| F1 ({result['average']}) | {result['f1']:.4f} |",
        f"| precision | {result['precision']:.4f} |",
        f"| recall | {result['recall']:.4f} |",
        f"| expected calibration error | {result['expected_calibration_error']:.4f} |",
        f"| examples/s | {result['examples_per_second']:.0f} |",
        *_latency_row(result),
        "", "Per-class precision, recall and F1: [per_class.csv](per_class.csv).", "",
        "![confusion matrix](confusion_matrix.png)", "", "![reliability diagram](reliability.png)",
    ]
    return ["per_class.csv", "confusion_matrix.png", "reliability.png"], lines


def _latency_row(result: dict) -> list[str]:
    if "latency_p50_ms" not in result:
        return []
    return [f"| latency p50 / p95 (batch 1) | {result['latency_p50_ms']:.1f} / {result['latency_p95_ms']:.1f} ms |"]
