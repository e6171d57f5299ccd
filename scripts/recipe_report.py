"""Print (and save as recipe_results.md and recipe_results.json) the results of a scripts/recipe.sh run.

    python scripts/recipe_report.py OUTPUT_DIR [TEACHER_FOLDER]

Works on a finished run or on one still going: each student's table has the seeds whose steps are done.
Every number is read from the files the recipe's steps wrote: eval.json (teacher and student scored side
by side on dev by evaluate.py), the twin's metrics.json (student_no_kd, trained by --compare_no_kd; for
sst2-few the baseline's), the training runs' metrics.json, and each step's record in OUTPUT_DIR/.recipe
(its time).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def step_seconds(out: Path) -> dict[str, float]:
    folder = out / ".recipe" / "steps"
    records = [load(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return {r["step"]: r["seconds"] for r in records}


def pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def seed_result(folder: Path) -> dict | None:
    """One seed of one student: its scores, its twin's, and what each cost; None until it is done."""
    if not (folder / "eval.json").is_file():
        return None
    scored = load(folder / "eval.json")
    kd_run = load(folder / "student" / "metrics.json")
    twin_folder = folder / "student_no_kd" if (folder / "student_no_kd").is_dir() else folder / "baseline" / "student"
    twin = load(twin_folder / "metrics.json") if (twin_folder / "metrics.json").is_file() else None
    twin_accuracy = twin["validation"]["accuracy"] if twin else None
    return {
        "seed": int(folder.name.removeprefix("seed-")),
        "distilled": scored["accuracy"],
        "twin": twin_accuracy,
        "difference": None if twin_accuracy is None else scored["accuracy"] - twin_accuracy,
        "agreement": scored.get("agreement"),
        "teacher": scored["teacher"]["accuracy"],
        "num_parameters": scored["num_parameters"],
        "latency_p50_ms": scored.get("latency_p50_ms"),
        "teacher_latency_p50_ms": scored["teacher"].get("latency_p50_ms"),
        "train_examples": kd_run["train_examples"],
        "augmented_examples": kd_run.get("augmented_examples", 0),
        "transfer_examples": kd_run.get("transfer_examples", 0),
        "best_step": kd_run.get("best_step"),
        "twin_train_examples": twin["train_examples"] if twin else None,
        "train_seconds": kd_run["total_train_seconds"],
        "twin_train_seconds": twin["total_train_seconds"] if twin else None,
        "teacher_logits_seconds": (kd_run.get("teacher_cache") or {}).get("seconds"),
        "mixed_precision": kd_run.get("mixed_precision", "no"),
        "num_examples": scored["num_examples"],
        "device": scored["device"],
    }


def signed(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.2f}"


def share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def secs(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} s"


def mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def collect(out: Path, teacher_folder: Path | None = None) -> dict:
    teacher_folder = teacher_folder or out / "teacher"
    settings = load(out / ".recipe" / "settings.json") if (out / ".recipe" / "settings.json").is_file() else {}
    seconds = step_seconds(out)
    students = {}
    for kind in sorted(p for p in out.iterdir() if p.is_dir() and any(p.glob("seed-*/eval.json"))):
        rows = [r for r in (seed_result(f) for f in sorted(kind.glob("seed-*"))) if r is not None]
        rows.sort(key=lambda r: r["seed"])
        for r in rows:
            r["step_seconds"] = seconds.get(f"{kind.name}/seed-{r['seed']}/distill")
        students[kind.name] = {
            "seeds": rows,
            "mean": {k: mean(rows, k) for k in ("distilled", "twin", "difference", "agreement")},
        }
    teacher_run = load(teacher_folder / "metrics.json") if (teacher_folder / "metrics.json").is_file() else {}
    return {
        "recipe": settings.get("recipe"),
        "settings": settings.get("values", {}),
        "machine": settings.get("machine", {}),
        "teacher": {
            "folder": str(teacher_folder),
            "dev_accuracy": (teacher_run.get("validation") or {}).get("accuracy"),
            "num_parameters": teacher_run.get("num_parameters"),
            "best_epoch": teacher_run.get("best_epoch"),
            "best_step": teacher_run.get("best_step"),
            "train_examples": teacher_run.get("train_examples"),
            "mixed_precision": teacher_run.get("mixed_precision"),
            "seconds": seconds.get("teacher"),
        },
        "students": students,
        "step_seconds": seconds,
    }


def render(results: dict) -> str:
    teacher, machine = results["teacher"], results["machine"]
    lines = [f"# recipe {results['recipe']}: results so far" if results["recipe"] else "# recipe results", ""]
    if machine:
        lines.append(f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, native bf16: "
                     f"{'yes' if machine.get('native_bf16') else 'no'}.")
    lines += [
        f"Teacher: {teacher['folder']}, {pct(teacher['dev_accuracy'])} dev accuracy, "
        + (f"{teacher['num_parameters'] / 1e6:.1f}M parameters, " if teacher["num_parameters"] else "")
        + (f"best at epoch {teacher['best_epoch']}" + (f" step {teacher['best_step']}" if teacher["best_step"] else "")
           if teacher["best_epoch"] else "")
        + (f", precision {teacher['mixed_precision']}" if teacher["mixed_precision"] else "")
        + (f", trained in {teacher['seconds']:.0f} s." if teacher["seconds"] else ", trained earlier."),
        "",
    ]
    for kind, student in results["students"].items():
        rows = student["seeds"]
        first = rows[0]
        lines += [
            f"## {kind}: {first['num_parameters'] / 1e6:.1f}M parameters, latency p50 (batch 1) "
            f"{first['latency_p50_ms']:.1f} ms against the teacher's {first['teacher_latency_p50_ms']:.1f} ms "
            f"(seed {first['seed']}), precision {first['mixed_precision']}",
            "",
            f"SST-2 dev ({first['num_examples']} sentences); the twin is the same student from the same start "
            f"without the teacher.",
            "",
            "| seed | distilled | twin | difference | agreement with the teacher | distill step | twin training |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(f"| {r['seed']} | {pct(r['distilled'])} | {pct(r['twin'])} | {signed(r['difference'])} | "
                         f"{share(r['agreement'])} | {secs(r['step_seconds'])} | {secs(r['twin_train_seconds'])} |")
        m = student["mean"]
        lines += [f"| mean of {len(rows)} | {pct(m['distilled'])} | {pct(m['twin'])} | {signed(m['difference'])} | "
                  f"{share(m['agreement'])} | | |",
                  "",
                  f"Distilled on {first['train_examples']} examples ({first['augmented_examples']} perturbed copies "
                  f"and {first['transfer_examples']} unlabeled texts labeled by the teacher alone); the twin on "
                  f"{first['twin_train_examples']}.",
                  ""]
    return "\n".join(lines)


def write_report(out: Path, teacher_folder: Path | None = None) -> str:
    results = collect(out, teacher_folder)
    text = render(results)
    (out / "recipe_results.md").write_text(text, encoding="utf-8")
    (out / "recipe_results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("teacher", nargs="?", type=Path, default=None)
    args = parser.parse_args()
    print(write_report(args.out, args.teacher), end="")


if __name__ == "__main__":
    main()
