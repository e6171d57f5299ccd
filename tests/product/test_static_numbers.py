"""The static-embedding section of the results page is what benchmarks/static_embeddings.py wrote."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, section

RESULTS = REPO / "benchmarks" / "results" / "static"
PAGE, HEADING = REPO / "docs" / "results.md", "## Without layers: static embeddings"


@pytest.mark.parametrize("name, base", [("minilm", "all-MiniLM-L6-v2"), ("mpnet", "all-mpnet-base-v2")])
def test_each_row_is_its_json(name, base):
    m = json.loads((RESULTS / f"{name}.json").read_text())
    heads = m["best_dev_accuracy_over_20_epochs"]
    row = (f"| {base} | {m['vocabulary']:,} x {m['pca_dims']} | {m['parameters'] / 1e6:.1f}M | "
           f"{m['distill_seconds']:.0f} s | {m['latency_p50_ms']:.2f} ms | {m['dev_sentences_per_second_batch_64']:,} | "
           f"{heads['linear']:.2f} | {heads['one hidden layer of 512']:.2f} |")
    assert row in section(PAGE, HEADING)
    assert m["model"].endswith(base) and m["train_sentences"] == 67349 and m["precision"] == "fp32"
    assert m["parameters"] == m["vocabulary"] * m["pca_dims"]


def test_the_gap_to_the_teacher_is_the_best_heads():
    m = json.loads((RESULTS / "mpnet.json").read_text())
    teacher = json.loads((REPO / "benchmarks" / "results" / "recipe-sst2" / "teacher-metrics.json").read_text())
    teacher = round(100 * teacher["validation"]["accuracy"], 2)
    gap = teacher - m["best_dev_accuracy_over_20_epochs"]["one hidden layer of 512"]
    assert f"stays {gap:.2f} points below that teacher's {teacher:.2f}" in section(PAGE, HEADING)
