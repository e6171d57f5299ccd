"""Every distillation method on the same teacher, data and budget: SST-2 dev accuracy, student size,
training time. Writes benchmarks/methods.{md,json}.

    python benchmarks/methods.py [--teacher DIR]     # without --teacher, fine-tunes MiniLM-L6 first

Teacher: all-MiniLM-L6-v2 fine-tuned on the SST-2 sentences used here (6 layers, width 384). Students:
MiniLM's first 3 layers unless the method builds its own. Each run is one distilled-bert.py process;
its time is the process's wall time (start-up, the teacher's one-time pass, training, validation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_benchmark import REPO, minilm_folder, read_json, run  # noqa: E402

from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import claim_work_dir  # noqa: E402

TINYBERT = ["--embedding_weight", "1", "--hidden_weight", "1", "--attention_weight", "1"]


def methods(l3: Path) -> list[tuple[str, str, list]]:
    """(row name, what the student starts from, flags) in table order."""
    pretrained = ["--student_model", l3]
    return [
        ("logit KD (KL, T=2, alpha=0.5), with --compare_no_kd", "MiniLM layers 1-3", [*pretrained, "--compare_no_kd"]),
        ("MSE on logits (--kd_loss mse)", "MiniLM layers 1-3", [*pretrained, "--kd_loss", "mse"]),
        ("DistilBERT init (--student_init teacher_layers --student_layers 3)", "teacher layers 0,2,5",
         ["--student_init", "teacher_layers", "--student_layers", "3"]),
        ("DistilBERT init + cosine (--cos_weight 1)", "teacher layers 0,2,5",
         ["--student_init", "teacher_layers", "--student_layers", "3", "--cos_weight", "1"]),
        ("TinyBERT terms + logit KD, one stage", "MiniLM layers 1-3", [*pretrained, *TINYBERT]),
        ("logit KD + augmentation (--augment 2)", "MiniLM layers 1-3", [*pretrained, "--augment", "2"]),
        ("BiLSTM student (--student_model bilstm, lr 1e-3, 3 epochs)", "random init",
         ["--student_model", "bilstm", "--learning_rate", "1e-3", "--num_train_epochs", "3"]),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=None, help="fine-tuned teacher folder (default: fine-tune MiniLM-L6 here)")
    p.add_argument("--train_samples", type=int, default=4096)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--work_dir", default="./models/methods")
    p.add_argument("--output_dir", default=str(REPO / "benchmarks"))
    p.add_argument("--report_only", action="store_true", help="measure nothing: rewrite methods.md from methods.json")
    args = p.parse_args()
    if args.report_only:
        write_table(json.loads((Path(args.output_dir) / "methods.json").read_text()), Path(args.output_dir))
        return
    work = or_exit(claim_work_dir, args.work_dir, "benchmarks/methods.py")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    common = ["--max_train_samples", args.train_samples, "--num_train_epochs", 1, "--learning_rate", args.learning_rate,
              "--overwrite_output_dir"]  # a new run replaces the models of the last one
    base = minilm_folder()
    teacher = Path(args.teacher) if args.teacher else work / "teacher"
    if not args.teacher:
        run(["trainer_teacher.py", "--model_name_or_path", base, "--output_dir", work, *common], logs / "teacher.log")
    run(["scripts/truncate_layers.py", "--model", base, "--layers", 3, "--output", work / "minilm-l3",
         "--overwrite"], logs / "l3.log")
    mean_pool_s = run(["trainer_teacher.py", "--model_name_or_path", base, "--output_dir", work / "mean-pool",
                       "--head", "mean_pool", *common], logs / "teacher_mean_pool.log")
    rows = []
    for name, folder, seconds in (("teacher: MiniLM-L6 fine-tuned ([CLS] head)", teacher, None),
                                  ("teacher with --head mean_pool", work / "mean-pool" / "teacher", mean_pool_s)):
        metrics = read_json(folder / "metrics.json")
        rows.append({"method": name, "start": "MiniLM-L6", "accuracy": metrics["validation"]["accuracy"],
                     "parameters": metrics["num_parameters"], "seconds": seconds or metrics["total_train_seconds"],
                     "note": "" if seconds else "training loop time only"})

    def distill(name: str, start: str, flags: list, out: Path, extra_flags=()) -> dict:
        seconds = run(["distilled-bert.py", "--teacher_model", teacher, "--output_dir", out, "--cache_dir", work / "cache",
                       *common, *flags, *extra_flags], logs / f"{out.name}.log")
        metrics = read_json(out / "student" / "metrics.json")
        return {"method": name, "start": start, "accuracy": metrics["validation"]["accuracy"],
                "parameters": metrics["num_parameters"], "seconds": seconds}

    for i, (name, start, flags) in enumerate(methods(work / "minilm-l3")):
        out = work / f"method{i}"
        rows.append(distill(name, start, flags, out))
        if "--compare_no_kd" in flags:
            no_kd = read_json(out / "student_no_kd" / "metrics.json")
            rows.append({"method": "no KD (alpha=0), the same student and start", "start": start,
                         "accuracy": no_kd["validation"]["accuracy"], "parameters": no_kd["num_parameters"],
                         "seconds": no_kd["total_train_seconds"], "note": "training loop time only (run inside the row above)"})
    # TinyBERT's two stages: intermediate layers first, then the logits from that student.
    stage1 = distill("", "", ["--student_model", work / "minilm-l3", *TINYBERT, "--stage", "intermediate"], work / "stage1")
    stage2 = distill("TinyBERT two stages (--stage intermediate, then prediction)", "MiniLM layers 1-3",
                     ["--student_model", work / "stage1" / "student", "--stage", "prediction"], work / "stage2")
    stage2["seconds"] += stage1["seconds"]
    stage2["note"] = f"both stages; after stage 1 alone: {100 * stage1['accuracy']:.2f}"
    rows.append(stage2)

    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores, fp32"
    out = Path(args.output_dir)
    doc = {"machine": machine, "train_samples": args.train_samples, "learning_rate": args.learning_rate, "rows": rows}
    (out / "methods.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_table(doc, out)


def write_table(doc: dict, out: Path) -> None:
    lines = [f"Machine: {doc['machine']}. SST-2: {doc['train_samples']} training sentences, 1 epoch (unless noted), "
             f"batch 32, learning rate {doc['learning_rate']}; dev accuracy on 872 sentences; one seed (42), so "
             f"differences under about a point are within seed noise. Time: the whole distilled-bert.py process "
             f"unless noted.", "",
             "| method | student starts from | dev accuracy | parameters | time |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        note = f"; {r['note']}" if r.get("note") else ""
        lines.append(f"| {r['method']} | {r['start']} | {100 * r['accuracy']:.2f} | {r['parameters'] / 1e6:.1f}M | "
                     f"{r['seconds']:.0f} s{note} |")
    (out / "methods.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
