"""Print (and save as recipe_results.md) the results table of a scripts/recipe.sh run.

    python scripts/recipe_report.py ./models/recipe-sst2-small [TEACHER_FOLDER] [--baseline FOLDER] [--times FILE]

Every number is read from the files the recipe's steps wrote: eval.json (teacher and student scored
side by side on dev by evaluate.py), the baseline's metrics.json (its best validation accuracy, on the
same dev split: student_no_kd, the twin --compare_no_kd trained, unless --baseline names another run),
the training runs' metrics.json and recipe_times.tsv (or --times).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def report(out: Path, teacher_folder: Path | None = None, baseline: Path | None = None,
           times_file: Path | None = None) -> str:
    scored = load(out / "eval.json")
    student, teacher = scored, scored["teacher"]
    no_kd = load((baseline or out / "student_no_kd") / "metrics.json")
    kd_run = load(out / "student" / "metrics.json")
    teacher_run = load((teacher_folder or out / "teacher") / "metrics.json")
    with open(times_file or out / "recipe_times.tsv", encoding="utf-8") as f:
        times = {row["stage"]: float(row["seconds"]) for row in csv.DictReader(f, delimiter="\t")}
    # The baseline's training time is not part of the recipe: with --compare_no_kd the student step
    # trained it too, otherwise it was a stage of its own.
    baseline_seconds = no_kd["total_train_seconds"]
    student_seconds = times["student"] - (0 if baseline else baseline_seconds)
    recipe_seconds = times["total"] - (times.get("baseline", 0) if baseline else baseline_seconds)
    no_kd_accuracy = no_kd["validation"]["accuracy"]

    def layers(folder: Path) -> str:
        count = load(folder / "config.json")["num_hidden_layers"]
        return f"{count} layer{'s' if count != 1 else ''}"

    teacher_layers, student_layers = layers(teacher_folder or out / "teacher"), layers(out / "student")

    def pct(value: float) -> str:
        return f"{100 * value:.2f}"

    rows = [
        (f"teacher ({teacher_layers}), fine-tuned", f"{teacher['num_parameters'] / 1e6:.1f}M", pct(teacher["accuracy"]), "",
         f"{teacher.get('latency_p50_ms', float('nan')):.1f} ms",
         f"{times['teacher']:.0f} s" if "teacher" in times else "trained earlier"),
        (f"student ({student_layers}), distilled", f"{student['num_parameters'] / 1e6:.1f}M", pct(student["accuracy"]),
         f"{student['accuracy'] / teacher['accuracy']:.1%}", f"{student.get('latency_p50_ms', float('nan')):.1f} ms",
         f"{student_seconds:.0f} s"),
        (f"student ({student_layers}) without the teacher (baseline)", f"{student['num_parameters'] / 1e6:.1f}M", pct(no_kd_accuracy),
         f"{no_kd_accuracy / teacher['accuracy']:.1%}", "", f"{baseline_seconds:.0f} s (not in the total)"),
    ]
    lines = [
        f"SST-2 dev ({student['num_examples']} sentences), {student['device']}, "
        f"{kd_run.get('mixed_precision', 'no')} precision ({kd_run.get('mixed_precision_reason', '')})",
        "",
        "| model | parameters | dev accuracy | of teacher | latency p50 (batch 1) | time |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"distillation minus baseline: {100 * (student['accuracy'] - no_kd_accuracy):+.2f} points of dev accuracy",
        f"teacher: {teacher_run['train_examples']} training sentences, best at epoch {teacher_run['best_epoch']}"
        + (f", step {teacher_run['best_step']}" if teacher_run.get("best_step") else ""),
        f"baseline: {no_kd['train_examples']} labeled training examples, best at epoch {no_kd['best_epoch']}",
        f"student: {kd_run['train_examples']} training examples ({kd_run.get('augmented_examples', 0)} of them "
        f"perturbed copies and {kd_run.get('transfer_examples', 0)} unlabeled texts, labeled by the teacher alone), "
        f"best at epoch {kd_run['best_epoch']}"
        + (f", step {kd_run['best_step']}" if kd_run.get("best_step") else ""),
        f"student agrees with the teacher on {student['agreement']:.1%} of dev sentences",
        f"recipe total (teacher, distillation, evaluation, test predictions; baseline excluded): "
        f"{recipe_seconds / 60:.1f} min",
        f"GLUE test-set predictions: {out / 'SST-2.tsv'}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="./models/recipe-sst2-small")
    parser.add_argument("teacher", nargs="?", default=None)
    parser.add_argument("--baseline", default=None)
    parser.add_argument("--times", default=None)
    args = parser.parse_args()
    out = Path(args.out)
    text = report(out, *(Path(v) if v else None for v in (args.teacher, args.baseline, args.times)))
    (out / "recipe_results.md").write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
