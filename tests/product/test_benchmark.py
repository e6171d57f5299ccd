"""The benchmark runs end to end (on tiny models here) and reports what it measured."""

import json
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.slow  # about a minute: ten script processes of its own
def test_benchmark_runs_and_reports(tiny_models, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "distill_benchmark.py"), "--teacher_base", tiny_models["teacher_base"],
         "--student_layers", "1", "--train_samples", "64", "--seeds", "42", "--latency_examples", "5",
         "--work_dir", tmp_path / "work", "--output_dir", out],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    ref, ours = results["reference"], results["project"]
    assert results["distill_epoch_speedup"] == pytest.approx(ref["distill"]["epoch_seconds"] / ours["distill"]["epoch_seconds"])
    assert 0 < ref["distill"]["padding_efficiency"] <= 1 and 0 < ours["distill"]["padding_efficiency"] <= 1
    assert all(0 <= a <= 1 for a in ref["distill"]["accuracies"] + ours["distill"]["accuracies"])
    for role in ("teacher", "student"):
        profile = results["inference"][role]
        assert profile["latency_p50_ms"] <= profile["latency_p95_ms"] and profile["flops_per_token"] > 0
    # The reference ran in both precisions, and its faster one is the one compared against.
    precisions = results["reference_precisions"]
    assert set(precisions) == {"no", "bf16"}
    assert results["reference_best_precision"] == min(precisions, key=lambda k: precisions[k]["epoch_seconds"])
    assert (tmp_path / "work" / "reference_distill_seed42_bf16.json").is_file()
    assert "epoch speedup" in (out / "results.md").read_text()
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
