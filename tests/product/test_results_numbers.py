"""The results page's numbers for `recipe.sh sst2` are the ones the commands wrote: each is checked
against its JSON file in benchmarks/results/recipe-sst2/, so the page cannot drift from what was measured."""

from __future__ import annotations

import json
import re

from helpers import REPO

RESULTS = REPO / "benchmarks" / "results" / "recipe-sst2"


def section() -> str:
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    start = page.index("## The base-size teacher at full scale")
    return page[start:page.index("\n## ", start + 1)]


def rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]


def test_the_teacher_numbers_are_its_metrics():
    metrics = json.loads((RESULTS / "teacher-metrics.json").read_text())
    args = json.loads((RESULTS / "teacher-training_args.json").read_text())["args"]
    text = section()
    assert f"**{100 * metrics['validation']['accuracy']:.2f}** dev accuracy" in text
    assert f"kept from step {metrics['best_step']:,} of" in text
    assert f"Training took {metrics['total_train_seconds']:,.0f} s" in text
    for epoch in metrics["history"]:
        assert f"{epoch['train_samples_per_second']:.1f}" in text
    for flag in ("num_train_epochs", "learning_rate", "eval_steps", "seed"):
        value = re.search(rf"--{flag} (\S+)", text).group(1)
        assert float(value) == args[flag], flag


def test_the_teacher_pass_table_is_the_benchmarks_output():
    measured = json.loads((RESULTS / "teacher_pass.json").read_text())
    table = [r for r in rows(section()) if r[0].startswith(("bf16 autocast", "the weights"))]
    assert len(table) == len(measured["rows"])
    for row, want in zip(table, measured["rows"]):
        assert row[1] == f"{want['sentences_per_s']:.1f}"
        assert float(row[2]) == round(want["max_logit_difference"], 4)
        assert ("batch 64" in row[0]) == want["setting"].endswith("batch 64")


def test_the_levers_table_is_what_levers_py_measured():
    """Each lever's row, as benchmarks/levers.py tables it from the runs' metrics.json, and the gain the
    text quotes."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from levers import table

    measured = json.loads((RESULTS / "levers.json").read_text())
    want = [r for r in rows(table(measured["rows"], measured)) if r[0] != "lever"]
    got = [r for r in rows(section()) if r[0] in {row["lever"] for row in measured["rows"]}]
    assert got == want
    twin = next(r["dev_accuracy"] for r in measured["rows"] if r["lever"] == "twin")
    best = max(measured["rows"], key=lambda r: r["dev_accuracy"])
    assert f"adds **{100 * (best['dev_accuracy'] - twin):.2f} points**" in section()
