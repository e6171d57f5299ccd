"""The frontier section of the results page: benchmarks/frontier_sst2.py's rendering of its kept files, a front
that is non-dominated when recomputed here, the kept student the --max_drop rule's pick, and the chart."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from helpers import REPO

RESULTS = REPO / "benchmarks" / "results" / "frontier"


def test_the_frontier_block_is_its_json():
    check = subprocess.run([sys.executable, str(REPO / "benchmarks" / "frontier_sst2.py"), "--report_only", "--check"],
                           cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_kept_front_is_non_dominated_and_the_kept_student_is_the_rules():
    doc = json.loads((RESULTS / "frontier.json").read_text())
    points, teacher = doc["points"], doc["teacher"]
    retimed = [p for p in points if p["retimed"]]
    front = [p for p in points if p["on_front"]]

    def beats(q, p):
        return q["selection"] >= p["selection"] and q["p50_ms"] <= p["p50_ms"] and (
            q["selection"] > p["selection"] or q["p50_ms"] < p["p50_ms"])

    assert front and all(not any(beats(q, p) for q in retimed) for p in front)
    assert all(any(beats(q, p) for q in retimed) for p in retimed if not p["on_front"])
    within = [p for p in front if p["validation"] >= teacher["validation"] - 2 / 100]
    pick = min(within, key=lambda p: p["p50_ms"]) if within else None
    assert doc["chosen"] == (None if pick is None else [pick["trial"], pick["format"]])
    # Every trial of trials.csv ran, and each point it timed is in frontier.json with the same selection score.
    with open(RESULTS / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert trials and all(t["state"] == "complete" for t in trials)
    scores = {(p["trial"], p["format"]): p["selection"] for p in points}
    for t in trials:
        for fmt in ("pytorch", "onnx-int8"):
            if t[f"{fmt}_selection"]:
                assert abs(scores[int(t["trial"]), fmt] - float(t[f"{fmt}_selection"])) < 1e-6


def test_the_chart_is_on_the_page():
    assert (REPO / "docs" / "frontier-sst2.png").read_bytes().startswith(b"\x89PNG")
    assert "![The accuracy-speed frontier on SST-2](frontier-sst2.png)" in (REPO / "docs" / "results.md").read_text()


def test_the_static_section_quotes_the_frontiers_static_student():
    doc = json.loads((RESULTS / "frontier.json").read_text())
    static = next(p for p in doc["points"] if p["student"].startswith("static") and p["format"] == "pytorch")
    text = " ".join((REPO / "docs" / "results.md").read_text().split())
    assert f"measured in the frontier below ({100 * static['validation']:.2f} on dev, one epoch)" in text
