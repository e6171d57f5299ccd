"""The sweep measured on the sst2-small recipe's teacher and 3-layer student (README, "Searching the settings").

    python benchmarks/sweep_sst2_small.py --teacher ./models/recipe-sst2-small/teacher --out ./models/sweep-bench

1. sweep.py: --trials 16 over alpha, temperature, learning rate and augment, on --train_samples training
   sentences (a seeded sample), 10% of them held out as the selection split that compares the trials;
2. the best settings (best_config.yaml) and the recipe's hand-picked ones (alpha 0.5, T 2, learning rate
   1e-4, --augment 1), each trained with 3 seeds on the same sample and split; every student scored once
   on SST-2 dev;
3. the cost: a sweep of --cost_trials trials that vary alpha and temperature alone (one transfer set, no
   pruning), its whole process timed with an empty teacher-logit cache, against as many plain fine-tunes
   of the same student (distilled-bert.py --alpha 0) run as separate processes.

Writes <out>/sweep_benchmark.json and prints a markdown table. Every run is a subprocess, as a user runs it.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import claim_work_dir  # noqa: E402

HAND_PICKED = {"alpha": 0.5, "temperature": 2.0, "learning_rate": 1e-4, "augment": 1}  # recipe.sh sst2-small


def run(script: str, *args, log: Path) -> float:
    """Run an entry script; its wall time in seconds. Its output goes to `log`."""
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO, stdout=out,
                               stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{script} failed ({code}); see {log}")
    return time.perf_counter() - start


def dev_accuracy(folder: Path) -> float:
    return json.loads((folder / "metrics.json").read_text())["validation"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=str(REPO / "data" / "sst2"))
    parser.add_argument("--train_samples", type=int, default=8000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--cost_trials", type=int, default=4)
    parser.add_argument("--skip", nargs="*", default=[], choices=("sweep", "seeds", "cost"))
    args = parser.parse_args()
    out = or_exit(claim_work_dir, args.out, "benchmarks/sweep_sst2_small.py", "--out")
    base = ["--teacher_model", args.teacher, "--data_path", args.data, "--student_init", "teacher_layers",
            "--student_layers", "0,2,5", "--num_train_epochs", "1", "--max_train_samples", args.train_samples,
            "--selection_split", "0.1", "--eval_steps", "100", "--report_to", "none"]
    doc_file = out / "sweep_benchmark.json"
    doc = json.loads(doc_file.read_text()) if doc_file.is_file() else {}
    doc.update(train_samples=args.train_samples, trials=args.trials)

    sweep_out = out / "sweep"
    if "sweep" not in args.skip:
        seconds = run("sweep.py", *base, "--output_dir", sweep_out, "--trials", args.trials, "--cache_dir",
                      out / "cache", "--search", "alpha=0.1:1.0", "temperature=1:8", "learning_rate=1e-5:3e-4:log",
                      "augment=0,1,2", log=out / "sweep.log")
        summary = json.loads((sweep_out / "sweep" / "summary.json").read_text())
        with open(sweep_out / "sweep" / "trials.csv", newline="") as f:
            trials = list(csv.DictReader(f))
        doc["sweep"] = {"seconds": seconds, "best_trial": summary["best_trial"], "best_settings": summary["settings"],
                        "selection_accuracy": summary["selection_accuracy"],
                        "validation_accuracy": summary["validation"]["accuracy"], "trials": summary["trials"],
                        "trial_seconds": [float(t["seconds"]) for t in trials if t["seconds"]],
                        "teacher_seconds": sum(float(t["teacher_seconds"] or 0) for t in trials)}
        doc_file.write_text(json.dumps(doc, indent=2))

    if "seeds" not in args.skip:
        rows = doc.setdefault("seeds", {})
        for seed in args.seeds:
            best = out / f"best-seed{seed}"
            run("distilled-bert.py", "--config", sweep_out / "sweep" / "best_config.yaml", "--seed", seed,
                "--output_dir", best, "--overwrite_output_dir", "--cache_dir", out / "cache", log=out / f"{best.name}.log")
            hand = out / f"hand-seed{seed}"
            flags = [f"--{k}={v}" for k, v in HAND_PICKED.items()]
            run("distilled-bert.py", *base, *flags, "--seed", seed, "--output_dir", hand, "--overwrite_output_dir",
                "--cache_dir", out / "cache", log=out / f"{hand.name}.log")
            rows[str(seed)] = {"best": dev_accuracy(best / "student"), "hand_picked": dev_accuracy(hand / "student")}
            doc_file.write_text(json.dumps(doc, indent=2))

    if "cost" not in args.skip:
        cost = out / "cost"
        shutil.rmtree(cost, ignore_errors=True)
        cost.mkdir(parents=True)
        fixed = [*base, "--learning_rate", "1e-4"]
        sweep_seconds = run("sweep.py", *fixed, "--output_dir", cost / "sweep", "--trials", args.cost_trials,
                            "--pruner", "none", "--cache_dir", cost / "cache", "--search", "alpha=0.1:1.0",
                            "temperature=1:8", log=cost / "sweep.log")
        with open(cost / "sweep" / "sweep" / "trials.csv", newline="") as f:
            teacher = sum(float(t["teacher_seconds"] or 0) for t in csv.DictReader(f))
        plain = [run("distilled-bert.py", *fixed, "--alpha", "0", "--output_dir", cost / f"plain-{i}",
                     log=cost / f"plain-{i}.log") for i in range(args.cost_trials)]
        doc["cost"] = {"trials": args.cost_trials, "sweep_seconds": sweep_seconds, "teacher_pass_seconds": teacher,
                       "plain_fine_tune_seconds": plain,
                       "ratio": (sweep_seconds - teacher) / sum(plain)}
        doc_file.write_text(json.dumps(doc, indent=2))
    print(report(doc))


def report(doc: dict) -> str:
    lines = []
    if "sweep" in doc:
        s = doc["sweep"]
        lines += [f"sweep: {doc['trials']} trials in {s['seconds']:.0f} s ({s['trials']}); best trial {s['best_trial']}: "
                  f"{s['best_settings']}, selection accuracy {100 * s['selection_accuracy']:.2f}, dev "
                  f"{100 * s['validation_accuracy']:.2f}; teacher passes {s['teacher_seconds']:.0f} s", ""]
    if doc.get("seeds"):
        lines += ["| seed | best settings (dev) | hand-picked (dev) | difference |", "|---|---|---|---|"]
        for seed, row in doc["seeds"].items():
            lines.append(f"| {seed} | {100 * row['best']:.2f} | {100 * row['hand_picked']:.2f} | "
                         f"{100 * (row['best'] - row['hand_picked']):+.2f} |")
        best = statistics.mean(r["best"] for r in doc["seeds"].values())
        hand = statistics.mean(r["hand_picked"] for r in doc["seeds"].values())
        lines += [f"| mean | {100 * best:.2f} | {100 * hand:.2f} | {100 * (best - hand):+.2f} |", ""]
    if "cost" in doc:
        c = doc["cost"]
        lines.append(f"cost: a {c['trials']}-trial sweep took {c['sweep_seconds']:.0f} s, {c['teacher_pass_seconds']:.0f} s "
                     f"of it the teacher's one pass; {c['trials']} plain fine-tunes took "
                     f"{sum(c['plain_fine_tune_seconds']):.0f} s (median {statistics.median(c['plain_fine_tune_seconds']):.0f} s); "
                     f"sweep less the teacher pass / plain fine-tunes = {c['ratio']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
