"""Scoring models on one split: one pass over the data per model, plus what a user weighs before
shipping a student: how often it agrees with its teacher, how calibrated it is, how big and how fast."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from .batching import MODEL, EncodedSplit, Encoding, eval_loader
from .metrics import agreement, classification_metrics, expected_calibration_error, mean_kl, softmax
from .models import count_parameters, size_on_disk
from .prediction import predict_logits

WARMUP_EXAMPLES = 3  # batch-1 forwards run before timing: the first calls allocate and pick kernels


def score(model, encoding: Encoding, labels: list[int] | None, batch_size: int, accelerator) -> tuple[np.ndarray, float]:
    """(logits in split order, seconds): one length-sorted pass under inference_mode, timed after a
    forward pass on one batch, so the first model scored does not also pay for warming up."""
    split = EncodedSplit({MODEL: encoding}, labels)
    loader = accelerator.prepare(eval_loader(split, batch_size))
    with torch.inference_mode():
        model(**next(iter(loader))[MODEL])
    _sync(accelerator.device)
    start = time.perf_counter()
    logits = predict_logits(model, loader, accelerator)
    _sync(accelerator.device)
    return logits, time.perf_counter() - start


def latency_ms(model, encoding: Encoding, samples: int, device) -> dict[str, float]:
    """Batch-1 latency of the model's forward pass over the split's first `samples` examples, each
    at its own length (no padding): the median and 95th percentile in milliseconds."""
    rows = list(range(min(samples, len(encoding.input_ids))))
    if not rows:
        return {}
    times = []
    model.eval()
    with torch.inference_mode():
        for i, row in enumerate(rows[:WARMUP_EXAMPLES] + rows):
            inputs = _one_example(encoding, row, device)
            _sync(device)
            start = time.perf_counter()
            model(**inputs)
            _sync(device)
            if i >= WARMUP_EXAMPLES:
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"latency_p50_ms": statistics.median(times),
            "latency_p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "latency_examples": len(times)}


def summarize(logits: np.ndarray, seconds: int, labels: list[int] | None, label_names: list[str]) -> dict:
    """Metrics from one model's logits (when the split has labels) and its throughput."""
    result = {"examples_per_second": len(logits) / max(seconds, 1e-9), "eval_seconds": seconds}
    if labels is not None:
        result.update(classification_metrics(labels, logits.argmax(-1), label_names))
        result["expected_calibration_error"] = expected_calibration_error(softmax(logits), labels)
    return result


def model_facts(model, source: str) -> dict:
    """Parameters and, for a local folder, the size of its weight files."""
    from pathlib import Path

    facts = {"num_parameters": count_parameters(model)}
    if Path(source).is_dir():
        facts["size_on_disk_mb"] = size_on_disk(source) / 2**20
    return facts


def teacher_comparison(teacher_logits: np.ndarray, student_logits: np.ndarray) -> dict:
    return {"agreement": agreement(teacher_logits, student_logits),
            "kl_teacher_to_student": mean_kl(teacher_logits, student_logits)}


def format_side_by_side(teacher: dict, student: dict, comparison: dict, batch_size: int) -> str:
    """Teacher and student as two columns, ratios against the teacher where they help."""
    rows = [
        ("parameters", lambda r: f"{r['num_parameters'] / 1e6:.1f}M"),
        ("size on disk", lambda r: f"{r['size_on_disk_mb']:.1f} MB" if "size_on_disk_mb" in r else "-"),
        ("accuracy", lambda r: f"{r['accuracy']:.4f}" if "accuracy" in r else "-"),
        ("f1", lambda r: f"{r['f1']:.4f}" if "f1" in r else "-"),
        ("calibration error", lambda r: f"{r['expected_calibration_error']:.4f}" if "accuracy" in r else "-"),
        ("latency p50/p95", lambda r: f"{r['latency_p50_ms']:.1f}/{r['latency_p95_ms']:.1f} ms"
            if "latency_p50_ms" in r else "-"),
        (f"examples/s @{batch_size}", lambda r: f"{r['examples_per_second']:.0f}"),
    ]
    lines = [f"{'':<22}{'teacher':>16}{'student':>16}{'student/teacher':>18}"]
    ratios = {
        "parameters": student["num_parameters"] / teacher["num_parameters"],
        f"examples/s @{batch_size}": student["examples_per_second"] / teacher["examples_per_second"],
    }
    if "size_on_disk_mb" in teacher and "size_on_disk_mb" in student:
        ratios["size on disk"] = student["size_on_disk_mb"] / teacher["size_on_disk_mb"]
    if "latency_p50_ms" in teacher and "latency_p50_ms" in student:
        ratios["latency p50/p95"] = student["latency_p50_ms"] / teacher["latency_p50_ms"]
    for label, cell in rows:
        ratio = f"{ratios[label]:.2f}x" if label in ratios else ""
        lines.append(f"{label:<22}{cell(teacher):>16}{cell(student):>16}{ratio:>18}")
    lines.append(f"the student predicts the teacher's label on {comparison['agreement']:.1%} of examples; "
                 f"KL(teacher || student) {comparison['kl_teacher_to_student']:.4f} nats per example")
    return "\n".join(lines)


def _one_example(encoding: Encoding, row: int, device) -> dict[str, torch.Tensor]:
    inputs = {"input_ids": torch.tensor([encoding.input_ids[row]], device=device)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if encoding.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([encoding.token_type_ids[row]], device=device)
    return inputs


def _sync(device) -> None:
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)
