"""Precision parity, the speed options and the shared teacher cache, measured in one run.

    python benchmarks/scale.py          # about 20 minutes on 2 CPU cores; writes benchmarks/scale.{md,json}

On the demo's setup (MiniLM-L6 teacher and its first 3 layers as the student, 4,096 (drawn with --max_train_samples) SST-2
training sentences, one epoch each, learning rate 1e-4, batch 32), each seed trains:

  precision   teacher and student in full precision (`no`) and in `bf16`, scored on the 872 dev
              sentences; `auto` is whichever of the two this machine's CPU calls for. Also the
              agreement of evaluate.py's predictions in bf16 and in fp32 for the same fp32 models.
  options     the student with --freeze_embeddings: dev accuracy and training speed.
  throughput  the share of the matmul peak (measured in this run, fp32 and bf16) a training step reaches:
              3 x forward FLOPs (forward, and a backward twice its size) per token processed.
  cache       a sweep's second distillation (same teacher and data, another output folder, the
              teacher's logits reused from the shared cache) against a plain fine-tuning run of the
              same student (--alpha 0), whole processes timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from distill_benchmark import (  # noqa: E402
    forward_flops_per_token,
    matmul_peak_gflops,
    minilm_folder,
    read_json,
    run,
)
from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import WORK_MARK, claim_work_dir  # noqa: E402
from kd_bert.train.precision import cpu_name  # noqa: E402


def training_gflops(metrics: dict, mean_tokens: float) -> float:
    """Model FLOPs per second of training: 3 x forward FLOPs per processed token (padding included)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(metrics["folder"], trust_remote_code=False)
    h = metrics["history"][0]
    tokens_per_s = h["train_samples_per_second"] * mean_tokens / h["padding_efficiency"]
    return 3 * forward_flops_per_token(config, mean_tokens) * tokens_per_s / 1e9


def predictions(path: Path) -> list[int]:
    return [int(line.split("\t")[1]) for line in path.read_text().splitlines()[1:]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="42,1,2")
    p.add_argument("--train_samples", type=int, default=4096)
    p.add_argument("--work_dir", default="./models/scale-benchmark")
    p.add_argument("--output_dir", default=str(REPO / "benchmarks"))
    p.add_argument("--report_only", action="store_true", help="rewrite scale.md from <output_dir>/scale.json")
    args = p.parse_args()
    out = Path(args.output_dir)
    if args.report_only:
        write_report(read_json(out / "scale.json"), out)
        return
    from kd_bert.train.precision import resolve_precision

    auto = resolve_precision("auto")
    work = or_exit(claim_work_dir, args.work_dir, "benchmarks/scale.py")
    for old in work.iterdir():  # each run starts afresh, in a folder only this benchmark fills
        if old.name != WORK_MARK:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    logs = work / "logs"
    logs.mkdir(parents=True)
    cache_env = {"KD_BERT_CACHE": str(work / "cache")}
    base = minilm_folder()
    seeds = [int(s) for s in args.seeds.split(",")]
    common = ["--data_path", "./data/sst2", "--max_train_samples", args.train_samples, "--num_train_epochs", 1,
              "--batch_size", 32, "--learning_rate", 1e-4, "--overwrite_output_dir"]
    run(["scripts/truncate_layers.py", "--model", base, "--layers", 3, "--output", work / "minilm-l3"],
        logs / "truncate.log")
    r = {"machine": f"{platform.machine()} CPU ({cpu_name()}), {os.cpu_count()} cores, torch "
                    f"{__import__('torch').__version__}",
         "auto": {"mode": auto.mode, "reason": auto.reason}, "seeds": seeds, "train_samples": args.train_samples,
         "peak_gflops": {"no": matmul_peak_gflops(), "bf16": matmul_peak_gflops(dtype="bfloat16")}, "runs": {}}

    def train(name: str, script: str, *flags) -> dict:
        folder = work / name
        seconds = run([script, *common, "--output_dir", folder, *flags], logs / f"{name}.log", cache_env)
        role = "teacher" if script == "trainer_teacher.py" else "student"
        metrics = read_json(folder / role / "metrics.json")
        metrics["folder"], metrics["process_seconds"] = str(folder / role), seconds
        r["runs"][name] = {k: metrics[k] for k in ("folder", "process_seconds", "history", "validation",
                                                   "mixed_precision", "teacher_cache") if k in metrics}
        return metrics

    for seed in seeds:
        print(f"seed {seed}", flush=True)
        for mode in ("no", "bf16"):
            train(f"teacher-{mode}-{seed}", "trainer_teacher.py", "--model_name_or_path", base, "--seed", seed,
                  "--mixed_precision", mode)
            train(f"student-{mode}-{seed}", "distilled-bert.py", "--teacher_model", work / f"teacher-{mode}-{seed}" /
                  "teacher", "--student_model", work / "minilm-l3", "--seed", seed, "--mixed_precision", mode)
        train(f"student-freeze-{seed}", "distilled-bert.py", "--teacher_model", work / f"teacher-no-{seed}" / "teacher",
              "--student_model", work / "minilm-l3", "--seed", seed, "--mixed_precision", "no", "--freeze_embeddings")

    print("evaluate.py in bf16 and in fp32 on the same fp32 models", flush=True)
    r["evaluate_agreement"] = {}
    for role in ("teacher", "student"):
        folder = work / f"{role}-no-{seeds[0]}" / role
        scored = {}
        for mode in ("no", "bf16"):
            preds = work / f"eval-{role}-{mode}.tsv"
            run(["evaluate.py", "--model", folder, "--data_path", "./data/sst2", "--mixed_precision", mode,
                 "--latency_samples", 0, "--predictions_file", preds, "--output", work / f"eval-{role}-{mode}.json"],
                logs / f"eval-{role}-{mode}.log")
            scored[mode] = (predictions(preds), read_json(work / f"eval-{role}-{mode}.json")["accuracy"])
        same = sum(a == b for a, b in zip(scored["no"][0], scored["bf16"][0]))
        r["evaluate_agreement"][role] = {"agreement": same / len(scored["no"][0]), "differ": len(scored["no"][0]) - same,
                                        "accuracy_no": scored["no"][1], "accuracy_bf16": scored["bf16"][1]}

    print("a sweep's second distillation against plain fine-tuning", flush=True)
    teacher = work / f"teacher-{auto.mode}-{seeds[0]}" / "teacher"
    shutil.rmtree(work / "cache", ignore_errors=True)
    sweep = ["distilled-bert.py", "--teacher_model", teacher, "--student_model", work / "minilm-l3", "--seed", seeds[0]]
    r["sweep"] = {
        "first": run([*sweep, *common, "--output_dir", work / "sweep-a"], logs / "sweep-a.log", cache_env),
        "second": run([*sweep, *common, "--output_dir", work / "sweep-b", "--temperature", 4], logs / "sweep-b.log",
                      cache_env),
        "plain": run(["distilled-bert.py", "--alpha", 0, "--student_model", work / "minilm-l3", "--seed", seeds[0],
                      *common, "--output_dir", work / "plain"], logs / "plain.log", cache_env),
        "second_reused": read_json(work / "sweep-b" / "student" / "metrics.json")["teacher_cache"]["reused"],
    }
    r["mean_tokens"] = _mean_tokens(base, args.train_samples)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    write_report(r, out)


def _mean_tokens(base: str, limit: int) -> float:
    from transformers import AutoTokenizer

    from kd_bert.data.read import load_raw
    from kd_bert.data.splits import draw_sample, train_sample

    train = load_raw(str(REPO / "data" / "sst2")).splits["train"]
    labels = [int(v) for v in train.columns["label"]]
    rows, _ = draw_sample(len(labels), labels, train_sample(limit, 42), "training")  # the teacher's (seed 42) sample
    texts = [train.columns["sentence"][i] for i in rows] if rows is not None else train.columns["sentence"]
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    return statistics.mean(len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=128)["input_ids"])


def write_report(r: dict, out: Path) -> None:
    seeds, runs = r["seeds"], r["runs"]

    def acc(name: str) -> list[float]:
        return [100 * runs[f"{name}-{s}"]["validation"]["accuracy"] for s in seeds]

    def rate(name: str) -> float:
        return statistics.median(runs[f"{name}-{s}"]["history"][0]["train_samples_per_second"] for s in seeds)

    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

    auto = r["auto"]["mode"]
    lines = [
        f"Machine: {r['machine']}. `--mixed_precision auto` picks `{auto}` here: {r['auto']['reason']}.",
        f"Matmul peak measured in this run (1024 x 1024): fp32 {r['peak_gflops']['no']:.0f} GFLOP/s, "
        f"bf16 {r['peak_gflops']['bf16']:.0f} GFLOP/s.",
        f"{r['train_samples']} SST-2 training sentences, 1 epoch, batch 32, learning rate 1e-4; seeds "
        f"{', '.join(map(str, seeds))}; dev accuracy as mean (each seed).",
        "",
        "| precision | teacher dev accuracy | student dev accuracy | teacher samples/s | student samples/s |",
        "|---|---|---|---|---|",
    ]
    for mode in ("no", "bf16"):
        label = f"`{mode}`" + (" (auto here)" if mode == auto else "")
        lines.append(f"| {label} | {cell(acc('teacher-' + mode))} | {cell(acc('student-' + mode))} | "
                     f"{rate('teacher-' + mode):.0f} | {rate('student-' + mode):.0f} |")
    lines += ["", "| student option (fp32) | dev accuracy | samples/s | share of the fp32 matmul peak |", "|---|---|---|---|"]
    for name, label in (("student-no", "trains the word embeddings (default)"),
                        ("student-freeze", "`--freeze_embeddings`")):
        share = statistics.median(training_gflops(runs[f"{name}-{s}"], r["mean_tokens"]) for s in seeds)
        lines.append(f"| {label} | {cell(acc(name))} | {rate(name):.0f} | {share:.0f} GFLOP/s, "
                     f"{share / r['peak_gflops']['no']:.0%} |")
    teacher_share = statistics.median(training_gflops(runs[f"teacher-no-{s}"], r["mean_tokens"]) for s in seeds)
    lines += ["", f"Teacher training in fp32 reaches {teacher_share:.0f} GFLOP/s, "
                  f"{teacher_share / r['peak_gflops']['no']:.0%} of the fp32 matmul peak (3 x forward FLOPs per token "
                  f"processed, {r['mean_tokens']:.1f} real tokens per sentence)."]
    lines += ["", "evaluate.py on the same fp32 models, in bf16 against fp32 (seed "
                  f"{seeds[0]}, 872 dev sentences):", "", "| model | predictions that agree | accuracy fp32 | accuracy bf16 |",
              "|---|---|---|---|"]
    for role, a in r["evaluate_agreement"].items():
        lines.append(f"| {role} | {a['agreement']:.2%} ({a['differ']} differ) | {100 * a['accuracy_no']:.2f} | "
                     f"{100 * a['accuracy_bf16']:.2f} |")
    s = r["sweep"]
    lines += ["", f"A sweep's second distillation (another output folder, another temperature, teacher logits "
                  f"{'reused' if s['second_reused'] else 'NOT reused'} from the shared cache) took {s['second']:.1f} s "
                  f"as a whole process; the first, which computed them, {s['first']:.1f} s; a plain fine-tuning run of "
                  f"the same student (`--alpha 0`) {s['plain']:.1f} s: **{s['second'] / s['plain']:.2f}x** plain "
                  f"fine-tuning."]
    (out / "scale.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
