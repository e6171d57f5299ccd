"""The few-labels tables of the results page, generated from the runs' JSON files, so the page cannot drift.

    python benchmarks/few_labels_curve.py            # rewrite the tables in docs/results.md
    python benchmarks/few_labels_curve.py --check    # exit 1 when the page differs from the files

Reads benchmarks/results/recipe-sst2-few/: labeled-N.json and labeled-N-KIND.json (scripts/recipe_report.py's
recipe_results.json of a `LABELED=N bash scripts/recipe.sh sst2-few` run, with STUDENTS=KIND for the second) and transfer-labels-N.json (benchmarks/transfer_labels.py
on the same run). Writes the block between <!-- few-labels --> and <!-- /few-labels --> in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "recipe-sst2-few"
PAGE = REPO / "docs" / "results.md"
sys.path.insert(0, str(REPO / "scripts"))

from generated_docs import write_or_check  # noqa: E402


# The recipe's student folders, as the tables name them.
STUDENTS = {"minilm3": "MiniLM-L6's first 3 layers (17.4M)", "minilm6": "MiniLM-L6 (22.7M)"}


def runs() -> list[tuple[int, str, dict, dict | None]]:
    """(labeled sentences, student, the recipe's results, the transfer labels' check) for each student of each run,
    by student (in STUDENTS' order) and then fewest labels first. labeled-N.json and labeled-N-KIND.json are runs
    with N labels; the check belongs to N labels, whichever student."""
    found = []
    for path in RESULTS.glob("labeled-*.json"):
        labeled = int(path.stem.split("-")[1])
        check = RESULTS / f"transfer-labels-{labeled}.json"
        result = json.loads(path.read_text())
        for kind in result["students"]:
            found.append((labeled, kind, result, json.loads(check.read_text()) if check.is_file() else None))
    return sorted(found, key=lambda run: (list(STUDENTS).index(run[1]), run[0]))


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def render() -> str:
    """The block between <!-- few-labels --> and <!-- /few-labels -->: the means, then each seed's run."""
    lines = ["| student | labeled sentences | teacher | seeds | distilled | baseline | difference | agreement with the "
             "teacher | teacher's labels on the transfer text |", "|---|---|---|---|---|---|---|---|---|"]
    seeds = ["", "| student | labeled sentences | seed | distilled | baseline | difference | agreement with the teacher | "
             "distillation, s | baseline, s |", "|---|---|---|---|---|---|---|---|---|"]
    for labeled, kind, result, check in runs():
        rows = result["students"][kind]["seeds"]
        mean = {key: statistics.fmean(r[key] for r in rows) for key in ("distilled", "twin", "difference", "agreement")}
        right = "" if check is None else f"{pct(check['teacher_accuracy'])}% right"
        lines.append(f"| {STUDENTS[kind]} | {labeled:,} | {pct(result['teacher']['dev_accuracy'])} | "
                     f"{', '.join(str(r['seed']) for r in rows)} | **{pct(mean['distilled'])}** | {pct(mean['twin'])} | "
                     f"{100 * mean['difference']:+.2f} | {100 * mean['agreement']:.1f}% | {right} |")
        for r in rows:
            seeds.append(f"| {STUDENTS[kind]} | {labeled:,} | {r['seed']} | {pct(r['distilled'])} | {pct(r['twin'])} | "
                         f"{100 * r['difference']:+.2f} | {100 * r['agreement']:.1f}% | {r['train_seconds']:.0f} | "
                         f"{r['twin_train_seconds']:.0f} |")
    return "\n".join([*lines, *seeds]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    sys.exit(write_or_check(PAGE, "few-labels", render(), args.check, "python benchmarks/few_labels_curve.py"))


if __name__ == "__main__":
    main()
