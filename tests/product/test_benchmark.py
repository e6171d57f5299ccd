"""The benchmark runs end to end (on tiny models here) and reports what it measured."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, listing


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


@pytest.mark.parametrize("script, flags", [
    ("scale.py", ["--work_dir"]),
    ("distill_benchmark.py", ["--work_dir"]),
    ("methods.py", ["--work_dir"]),
    ("onnx_speed.py", ["--work_dir"]),
    ("sweep_sst2_small.py", ["--teacher", "unused", "--out"]),
    ("unlabeled_transfer.py", ["--out"]),
])
def test_a_benchmark_never_fills_a_folder_it_did_not_make(script, flags, tmp_path):
    """Each benchmark replaces its own earlier models: given a folder holding a user's model, it stops at once
    with one line, and the folder is untouched."""
    users = tmp_path / "models"
    (users / "teacher").mkdir(parents=True)
    (users / "teacher" / "config.json").write_text('{"model_type": "bert"}')
    before = listing(users)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *flags, str(users)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [f"error: {flags[-1]} {users} holds files written by something else, "
                                                f"which this run would replace; give a new or empty folder"]
    assert listing(users) == before


def levers(*flags, cwd):
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "levers.py"), *map(str, flags)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_levers_takes_a_finished_run_only_when_it_ran_with_the_same_settings(tmp_path):
    """levers.py skips a lever whose run finished; one seed's run must never stand in another seed's table."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import levers as module

    teacher, data, out = tmp_path / "teacher", tmp_path / "data", tmp_path / "out"
    teacher.mkdir(), data.mkdir()
    missing = levers("--teacher", teacher, "--data", data, "--out", out, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: --teacher {teacher}: {teacher / 'config.json'} is missing"] and not out.exists()
    (teacher / "config.json").write_text("{}")
    (data / "train.tsv").write_text("sentence\tlabel\n")
    args = module.argparse.Namespace(teacher=teacher, data=data, out=out, student=module.MINILM,
                                     student_flags=["--student_init", "first_layers", "--student_layers", "3"],
                                     epochs=1, learning_rate=1e-4, seed=42, eval_steps=1000, checkpointing_steps=500)
    recorded = vars(module.distill_parser().parse_args(module.lever_flags("twin", args)))
    student = out / "twin" / "student"
    student.mkdir(parents=True)
    (student / "training_args.json").write_text(json.dumps({"role": "student", "args": recorded}))
    (student / "metrics.json").write_text(json.dumps({
        "validation": {"accuracy": 0.875}, "train_examples": 100, "best_epoch": 1, "total_train_seconds": 9.0}))
    common = ["--teacher", teacher, "--data", data, "--out", out, "--only", "twin"]
    same = levers(*common, cwd=tmp_path)
    assert same.returncode == 0, same.stderr[-2000:]
    assert "| twin | `--alpha 0` | 87.50 |" in same.stdout  # taken as finished: nothing trained
    other = levers(*common, "--seed", "1", cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        f"error: lever twin in {out} finished with other settings (--seed 42 then, 1 now); give another --out, "
        f"or the earlier values"]
    assert json.loads((out / "levers.json").read_text())["seed"] == 42  # the table of seed 42 stands
    failing = levers("--teacher", teacher, "--data", data, "--out", out, "--only", "twin", "kd", cwd=tmp_path)
    assert failing.returncode == 1  # the empty teacher folder fails kd's run; the finished twin still counts
    assert failing.stderr.strip().splitlines()[-1] == "error: 1 lever(s) failed: kd; the table has the others"
    assert "| twin | `--alpha 0` | 87.50 |" in failing.stdout


@pytest.mark.slow  # two tiny distillations and a third that is killed
def test_a_stopped_lever_continues_to_the_uninterrupted_result(tmp_path, sst2_slice, trained_teacher, tiny_models):
    """A lever killed after its first checkpoint continues from it when levers.py runs again, and its table row
    is the uninterrupted run's. The best model so far, with its metrics.json, is on disk when the kill lands (an
    evaluation at step 2, the checkpoint at 3): it must not pass for a finished run."""
    common = ["--teacher", trained_teacher, "--data", sst2_slice, "--student", tiny_models["student_base"],
              "--student_flags", "", "--epochs", "3", "--learning_rate", "1e-3", "--eval_steps", "2",
              "--checkpointing_steps", "3", "--only", "kd"]
    whole = levers(*common, "--out", tmp_path / "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout[-2000:] + whole.stderr[-2000:]
    out = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "levers.py"), *map(str, common), "--out",
                             str(out)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((out / "kd").glob("checkpoints/*/step-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the lever ended before the moment to kill it"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "total_train_seconds" not in json.loads((out / "kd" / "student" / "metrics.json").read_text())
    again = levers(*common, "--out", out, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resumed from" in again.stdout
    rows = [json.loads((folder / "levers.json").read_text())["rows"] for folder in (tmp_path / "whole", out)]
    assert [(r["lever"], r["dev_accuracy"], r["train_examples"]) for r in rows[1]] == \
        [(r["lever"], r["dev_accuracy"], r["train_examples"]) for r in rows[0]]


def test_transfer_labels_scores_the_cached_teacher_labels_against_the_gold_ones(tmp_path):
    """benchmarks/transfer_labels.py: the teacher's labels on a few-labels run's transfer text, read from the
    logit cache, against the gold labels few_labels.py took away; checked against a count by hand."""
    import torch

    out, data, cache = tmp_path / "run", tmp_path / "data", tmp_path / "cache"
    (out / "teacher").mkdir(parents=True), data.mkdir(), (cache / "teacher_logits").mkdir(parents=True)
    texts = ["good", "bad", "fine", "awful", "twice"]
    (out / "unlabeled.txt").write_text("\n".join(texts) + "\n")
    (data / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\nfine\t1\nawful\t0\ntwice\t0\ntwice\t1\nkept\t1\n")
    # The teacher says: good 1 (sure), bad 1 (wrong, unsure), fine 1, awful 0, twice 0 (its gold is both).
    logits = torch.tensor([[-3.0, 3.0], [0.1, 0.3], [-1.0, 1.0], [2.0, -2.0], [1.0, -1.0]])
    torch.save({"logits": logits}, cache / "teacher_logits" / "k.pt")
    (cache / "teacher_logits" / "k.json").write_text(json.dumps(
        {"data_path": str((out / "unlabeled.txt").resolve()), "teacher": str((out / "teacher").resolve())}))
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "transfer_labels.py"), str(out), "--data",
                           str(data), "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KD_BERT_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["transfer_sentences"] == 5 and result["ambiguous_gold"] == 1
    assert result["teacher_accuracy"] == 3 / 4  # of the 4 with one gold label, "bad" is wrong
    unsure = result["by_confidence"][0]
    assert (unsure["sentences"], unsure["accuracy"]) == (1, 0.0)  # "bad" at p = 0.55
