"""The tables evaluate.py prints: a teacher beside its student, and a model beside its ONNX Runtime
export and int8 version. The rows a task shows come from its Task (table_rows, calibration_rows,
follows_row), so nothing here asks which kind of task it is."""

from __future__ import annotations


def runtime_name(computed: str) -> str:
    """ "pytorch bf16" as printed: "PyTorch bf16"."""
    runtime, _, dtype = computed.partition(" ")
    return f"{ {'pytorch': 'PyTorch', 'onnxruntime': 'ONNX Runtime'}.get(runtime, runtime)} {dtype}"


def format_side_by_side(teacher: dict, student: dict, comparison: dict, task, batch_size: int) -> str:
    """Teacher and student as two columns, ratios against the teacher where they help, and how closely the
    student follows the teacher (task: the run's Task)."""
    def metric(key: str):
        return lambda r: f"{r[key]:.4f}" if key in r else "-"

    quality = [(label, metric(key)) for label, key in task.table_rows + task.calibration_rows]
    rows = [
        ("parameters", lambda r: f"{r['num_parameters'] / 1e6:.1f}M"),
        ("size on disk", lambda r: f"{r['size_on_disk_mb']:.1f} MB" if "size_on_disk_mb" in r else "-"),
        *quality,
        ("latency p50/p95", lambda r: f"{r['latency_p50_ms']:.1f}/{r['latency_p95_ms']:.1f} ms"
            if "latency_p50_ms" in r else "-"),
        (f"examples/s @{batch_size}", lambda r: f"{r['examples_per_second']:.0f}"),
    ]
    ratios = _ratios(teacher, student, batch_size)
    lines = [f"{'':<22}{'teacher':>16}{'student':>16}{'student/teacher':>18}"]
    for label, cell in rows:
        ratio = f"{ratios[label]:.2f}x" if label in ratios else ""
        lines.append(f"{label:<22}{cell(teacher):>16}{cell(student):>16}{ratio:>18}")
    lines.append(task.describe_comparison(comparison))
    return "\n".join(lines)


def _ratios(teacher: dict, student: dict, batch_size: int) -> dict[str, float]:
    """Student over teacher, by row label, for the rows where a ratio helps."""
    ratios = {
        "parameters": student["num_parameters"] / teacher["num_parameters"],
        f"examples/s @{batch_size}": student["examples_per_second"] / teacher["examples_per_second"],
    }
    if "size_on_disk_mb" in teacher and "size_on_disk_mb" in student:
        ratios["size on disk"] = student["size_on_disk_mb"] / teacher["size_on_disk_mb"]
    if "latency_p50_ms" in teacher and "latency_p50_ms" in student:
        ratios["latency p50/p95"] = student["latency_p50_ms"] / teacher["latency_p50_ms"]
    return ratios


def format_onnx(result: dict, task) -> str:
    """The model next to its ONNX Runtime export and int8 version, whichever were made (task: the run's Task)."""
    columns = [("model", result)] + [(name, result[key]) for name, key in (("onnx fp32", "onnx"),
                                                                           ("onnx int8", "quantized")) if key in result]

    def cell(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    rows = [(label, key, ".4f") for label, key in task.table_rows]
    rows += [task.follows_row, ("latency p50 (ms)", "latency_p50_ms", ".2f"),
             ("examples/s", "examples_per_second", ".0f"), ("size on disk (MB)", "size_on_disk_mb", ".1f")]

    def versus(r: dict) -> str:  # which two precisions a check compares: a model scored in bf16 is no fp32 reference
        return f"{runtime_name(r['computed_in'])} vs {runtime_name(r['compared_with'])}: {task.describe_follows(r)}"

    lines = []
    if "onnx" in result:
        lines.append(f"ONNX export written to {result['onnx']['saved_to']}; {versus(result['onnx'])}, logits differ "
                     f"by at most {result['onnx']['max_abs_logit_diff']:.2e}")
    if "quantized" in result:
        fused = ", ".join(f"{n} {k}" for k, n in result["quantized"]["fused"].items()) or "none"
        lines.append(f"int8: ONNX Runtime dynamic quantization after fusing ({fused}); {versus(result['quantized'])}")
    lines.append(f"{'':<22}" + "".join(f"{name:>12}" for name, _ in columns))
    lines += [f"{label:<22}" + "".join(f"{cell(r, key, fmt):>12}" for _, r in columns) for label, key, fmt in rows]
    return "\n".join(lines)
