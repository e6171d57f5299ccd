"""Print the demo's three rows side by side and keep them in OUT/demo.json.

    python scripts/demo_report.py OUT --base NAME --teacher_labels 8000 --labels 2000 --unlabeled 16000 \
        [--seconds total=240 ...]

Reads what scripts/demo.sh's evaluate.py runs wrote: OUT/eval.json (the distilled student, scored beside the
teacher) and OUT/twin/eval.json (the twin, trained without the teacher). Every number printed is one of theirs,
or a difference or ratio of two of them. The goals checked: the distilled student at least 3 points above its
twin, and within 3 points of the teacher.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kd_bert.train.precision import cpu_name  # noqa: E402

ABOVE_TWIN = 3.0  # goal: the distilled student at least this many points above its twin
NEAR_TEACHER = 3.0  # goal: ... and at most this many below the teacher


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        sys.exit(f"error: {path} is missing: run bash scripts/demo.sh, which writes it with evaluate.py --output")


def row(name: str, learned_from: str, scored: dict) -> dict:
    return {"model": name, "learned_from": learned_from, "parameters": scored["num_parameters"],
            "accuracy": round(100 * scored["accuracy"], 2), "latency_p50_ms": scored.get("latency_p50_ms"),
            "examples_per_second": scored["examples_per_second"]}


def report(out: Path, base: str, teacher_labels: int, labels: int, unlabeled: int, seconds: dict[str, int]) -> dict:
    student = read(out / "eval.json")
    twin = read(out / "twin" / "eval.json")
    rows = [row(f"teacher: {base.rstrip('/').rsplit('/', 1)[-1]}", f"{teacher_labels:,} labeled sentences", student["teacher"]),
            row("distilled student: 3 layers", f"{labels:,} labeled + {unlabeled:,} the teacher labels", student),
            row("twin: 3 layers, no teacher", f"the same {labels:,} labeled sentences", twin)]
    teacher, distilled, alone = (r["accuracy"] for r in rows)
    speed_up = student["teacher"]["latency_p50_ms"] / student["latency_p50_ms"]
    return {"rows": rows, "above_twin": round(distilled - alone, 2), "below_teacher": round(teacher - distilled, 2),
            "goals": {"above_twin": distilled - alone >= ABOVE_TWIN, "near_teacher": teacher - distilled <= NEAR_TEACHER},
            "speed_up_batch1_p50": round(speed_up, 2), "examples": student["num_examples"], "split": student["split"],
            "precision": student["mixed_precision"], "precision_reason": student["mixed_precision_reason"],
            "cpu": cpu_name(), "cores": os.cpu_count(), "seconds": seconds}


def table(result: dict) -> str:
    lines = ["| model | learned from | parameters | dev accuracy | batch-1 p50 | examples/s, batch 64 |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        p50 = f"{r['latency_p50_ms']:.1f} ms" if r["latency_p50_ms"] is not None else ""
        lines.append(f"| {r['model']} | {r['learned_from']} | {r['parameters'] / 1e6:.1f}M | {r['accuracy']:.2f} | "
                     f"{p50} | {r['examples_per_second']:.0f} |")
    return "\n".join(lines)


def summary(result: dict) -> str:
    mark = {True: "met", False: "NOT met"}
    return (f"distilled student - twin: {result['above_twin']:+.2f} points (goal >= +{ABOVE_TWIN:g}: "
            f"{mark[result['goals']['above_twin']]}); teacher - distilled student: {result['below_teacher']:.2f} "
            f"(goal <= {NEAR_TEACHER:g}: {mark[result['goals']['near_teacher']]}); the student answers "
            f"{result['speed_up_batch1_p50']:.1f}x faster than the teacher at batch 1 (p50)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--base", required=True, help="the model the teacher was fine-tuned from")
    parser.add_argument("--teacher_labels", type=int, required=True)
    parser.add_argument("--labels", type=int, required=True)
    parser.add_argument("--unlabeled", type=int, required=True)
    parser.add_argument("--seconds", nargs="*", default=[], metavar="STEP=S", help="each step's time, for demo.json")
    args = parser.parse_args(argv)
    seconds = {name: int(value) for name, _, value in (item.partition("=") for item in args.seconds)}
    result = report(args.out, args.base, args.teacher_labels, args.labels, args.unlabeled, seconds)
    (args.out / "demo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nSST-2 {result['split']} set ({result['examples']} sentences), {result['precision']} "
          f"({result['precision_reason']}), {result['cpu']}, {result['cores']} cores"
          + (f", {seconds['total']} s in all" if "total" in seconds else ""))
    print(table(result))
    print(summary(result))
    print(f"every number: {args.out / 'demo.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
