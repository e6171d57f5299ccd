"""The student through PyTorch and through ONNX Runtime, fp32 and int8, on one split: accuracy, examples/s at
the evaluation batch size and batch-1 p50 latency, each the median over --repeats runs of evaluate.py's own
measurement (the Python API, in this process), the rows taking turns.

    python benchmarks/onnx_speed.py --model ./models/recipe-sst2-small/student --data_path ./data/sst2 [--repeats 5]

The ONNX folders are made once, by evaluate.py --export_onnx --quantize onnx-int8, into --work_dir. Rows:
PyTorch fp32; PyTorch bf16 autocast (on a CPU without native bf16 it is emulated, and slower); PyTorch dynamic
int8 through torch.ao.quantization.quantize_dynamic, the route --quantize dynamic-int8 took before it was
removed (deprecated upstream; it warns, and is measured here to show why it went); ONNX Runtime fp32 (the
plain export) and int8 (fused, then dynamically quantized). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from generated_docs import write_or_check  # noqa: E402  (after scripts/ is on the path)
from kd_bert import DataConfig, EvalConfig, evaluate  # noqa: E402  (after the repo is on the path)
from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import claim_work_dir  # noqa: E402


def torch_dynamic_int8():
    """evaluate() with load_classifier swapped for one that returns the torch.ao dynamic-int8 model."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    from kd_bert.jobs import evaluate as evaluation

    load = evaluation.load_classifier

    def load_int8(path, flag):
        return quantize_dynamic(load(path, flag).eval(), {torch.nn.Linear}, dtype=torch.qint8)

    return _patched(evaluation, "load_classifier", load_int8)


@contextlib.contextmanager
def _patched(module, name, value):
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def measure(rows: dict[str, tuple], data: DataConfig, args) -> dict[str, dict]:
    """Each row's median over the repeats, the rows taking turns within each repeat, so that a slow spell
    of a shared machine falls on all of them alike."""
    runs = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (model, precision, patch) in rows.items():
            cfg = EvalConfig(model=model, batch_size=args.batch_size, latency_samples=args.latency_samples,
                             mixed_precision=precision)
            with patch(), contextlib.redirect_stdout(io.StringIO()):  # evaluate.py's report: only numbers here
                runs[name].append(evaluate(cfg, data).metrics)
    return {name: {"accuracy": r[0]["accuracy"],
                   "examples_per_second": statistics.median(m["examples_per_second"] for m in r),
                   "latency_p50_ms": statistics.median(m["latency_p50_ms"] for m in r),
                   "size_on_disk_mb": r[0].get("size_on_disk_mb"), "runs": len(r)} for name, r in runs.items()}


def table(rows: dict[str, dict], batch_size: int) -> list[str]:
    base = rows["PyTorch fp32"]
    lines = [f"| | accuracy | examples/s @{batch_size} | vs fp32 | batch-1 p50 (ms) | weights (MB) |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        size = f"{r['size_on_disk_mb']:.1f}" if r["size_on_disk_mb"] and "torch.ao" not in name else "-"
        lines.append(f"| {name} | {100 * r['accuracy']:.2f} ({100 * (r['accuracy'] - base['accuracy']):+.2f}) "
                     f"| {r['examples_per_second']:,.0f} | {r['examples_per_second'] / base['examples_per_second']:.2f}x "
                     f"| {r['latency_p50_ms']:.2f} | {size} |")
    return lines


NOTES = REPO / "benchmarks" / "onnx_speed_notes.md"
MEASURED = REPO / "benchmarks" / "results" / "onnx-speed" / "onnx_speed.json"


def notes_block(doc: dict) -> str:
    """The block between <!-- onnx-speed --> and <!-- /onnx-speed --> in benchmarks/onnx_speed_notes.md."""
    flags = doc["cpu_bf16_flags"]
    machine = (f"{doc['machine']}, {'native bf16 (' + ', '.join(flags) + ')' if flags else 'no native bf16'}; "
               f"torch {doc['torch']}, onnxruntime {doc['onnxruntime']}; {doc['num_examples']} dev sentences, "
               f"medians of {doc['repeats']} runs. Each row's precision is in its name: PyTorch fp32 and the "
               f"ONNX rows run with `--mixed_precision no`, the bf16 row under bf16 autocast.")
    return "\n".join([machine, "", *table(doc["rows"], doc["batch_size"])]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "recipe-sst2-small" / "student"))
    parser.add_argument("--data_path", default=str(REPO / "data" / "sst2"))
    parser.add_argument("--work_dir", default="/tmp/kd-onnx-speed", help="where the ONNX folders are written")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--latency_samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument("--report_only", action="store_true",
                        help=f"measure nothing: rewrite the table in {NOTES.name} from {MEASURED.relative_to(REPO)}")
    parser.add_argument("--check", action="store_true", help="with --report_only: fail if that table is stale")
    args = parser.parse_args()
    if args.report_only:
        measured = notes_block(json.loads(MEASURED.read_text(encoding="utf-8")))
        sys.exit(write_or_check(NOTES, "onnx-speed", measured, args.check,
                                "python benchmarks/onnx_speed.py --report_only"))
    data = DataConfig(data_path=args.data_path)
    work = or_exit(claim_work_dir, args.work_dir, "benchmarks/onnx_speed.py")
    fp32, int8 = work / "onnx-fp32", work / "onnx-int8"
    with contextlib.redirect_stdout(io.StringIO()):
        made = evaluate(EvalConfig(model=args.model, export_onnx=str(fp32), quantize="onnx-int8",
                                   save_quantized=str(int8), latency_samples=0, mixed_precision="no"), data).metrics
    print(f"exported {args.model} to {fp32}: ONNX Runtime's logits differ from PyTorch's by at most "
          f"{made['onnx']['max_abs_logit_diff']:.1e}; int8 fusions {made['quantized']['fused']}")
    none = contextlib.nullcontext
    rows = measure({"PyTorch fp32": (args.model, "no", none), "PyTorch bf16 autocast": (args.model, "bf16", none),
                    "PyTorch dynamic int8 (torch.ao, removed)": (args.model, "no", torch_dynamic_int8),
                    "ONNX Runtime fp32": (str(fp32), "no", none), "ONNX Runtime int8": (str(int8), "no", none)},
                   data, args)
    print(f"\n{args.model} on {args.data_path} ({made['num_examples']} examples), medians of {args.repeats} runs")
    print("\n".join(table(rows, args.batch_size)))
    if args.output:
        import platform

        import onnxruntime
        import torch

        from kd_bert.train.precision import cpu_bf16_flags, cpu_name

        doc = {"machine": f"{platform.machine()} CPU ({cpu_name()}), {torch.get_num_threads()} threads",
               "cpu_bf16_flags": cpu_bf16_flags(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
               "model": args.model, "num_examples": made["num_examples"], "batch_size": args.batch_size,
               "latency_samples": args.latency_samples, "repeats": args.repeats, "rows": rows}
        Path(args.output).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
