"""Accelerate: --report_to none starts no tracker, and two processes on the CPU (torchrun, gloo) give the
single-process result.

With dropout off and random batches (--no-group_by_length), two processes with batch 8 each see
exactly the batches of one process with batch 16, and DDP's averaged gradient is the batch-16
gradient up to float rounding. Adam turns rounding noise in near-zero gradients into full-size
steps, so the trained weights drift apart slowly: training is compared within a tolerance, and
evaluation of one saved model, which involves no optimizer, exactly."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from helpers import FAST_TRAINING, REPO, Result, run_script

from kd_bert import DataConfig, TrainConfig


def test_report_to_none_writes_no_runs_folder(tmp_path, sst2_slice, tiny_models):
    from kd_bert import train_teacher
    from kd_bert.config import trackers

    assert trackers(None) == (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
    flags = dict(zip(FAST_TRAINING[::2], FAST_TRAINING[1::2]))
    data = DataConfig(data_path=str(sst2_slice), max_length=int(flags["--max_length"]))
    train = TrainConfig(output_dir=str(tmp_path), num_train_epochs=1, max_train_samples=64,
                        batch_size=int(flags["--batch_size"]), report_to=["none"])
    result = train_teacher(str(tiny_models["teacher_base"]), data, train)
    assert (result.model_dir / "model.safetensors").is_file()
    assert not (tmp_path / "runs").exists()


QUICK = ["--num_train_epochs", "2", "--learning_rate", "1e-3", "--max_length", "64", "--no-group_by_length"]


def without_dropout(source, target):
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (target / "config.json").write_text(json.dumps(config))
    return target


def launch(script, *args, processes):
    if processes == 1:
        return run_script(script, *args)
    # `accelerate launch --cpu` starts a single process (its simple launcher); torchrun starts one per rank,
    # and ACCELERATE_USE_CPU makes Accelerate join them over gloo on the CPU.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(REPO / script), *map(str, args)]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "ACCELERATE_USE_CPU": "true",
                               "OMP_NUM_THREADS": "1"})
    return Result(proc, time.perf_counter() - start)


def history(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics, [(h["train_loss"], h["eval"]["loss"]) for h in metrics["history"]]


@pytest.mark.slow  # two torchrun launches of each script
@pytest.mark.skipif(sys.platform == "win32", reason="gloo on CPU")
def test_two_processes_match_one(sst2_slice, tiny_models, tmp_path):
    teacher_base = without_dropout(tiny_models["teacher_base"], tmp_path / "teacher-base")
    student_base = without_dropout(tiny_models["student_base"], tmp_path / "student-base")
    runs = {}
    for processes, batch in ((1, "16"), (2, "8")):
        out = tmp_path / f"p{processes}"
        teacher = launch("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path", teacher_base,
                         "--output_dir", out, "--batch_size", batch, *QUICK, processes=processes)
        assert teacher.returncode == 0, teacher
        assert teacher.stdout.count("saved teacher to") == 1  # one process prints and writes
        recorded = json.loads((out / "teacher" / "training_args.json").read_text())["num_processes"]
        assert recorded == processes  # really that many processes, one shard of each batch each
        student = launch("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", out / "teacher",
                         "--student_model", student_base, "--output_dir", out, "--batch_size", batch, *QUICK,
                         "--cache_dir", out / "cache", processes=processes)
        assert student.returncode == 0, student
        assert len(list((out / "cache" / "teacher_logits").glob("*.pt"))) == 1
        assert not [p.name for p in out.iterdir() if ".partial" in p.name or ".old" in p.name]
        runs[processes] = {role: history(out / role) for role in ("teacher", "student")}
    for role in ("teacher", "student"):
        (one, one_losses), (two, two_losses) = runs[1][role], runs[2][role]
        assert one["validation"]["num_examples"] == two["validation"]["num_examples"] == 120  # each example once
        assert two["train_examples"] == 320
        for (train_one, _), (train_two, _) in zip(one_losses, two_losses, strict=True):
            assert train_one == pytest.approx(train_two, rel=2e-3), role

    scores = {}
    for processes in (1, 2):
        out = tmp_path / f"eval{processes}.json"
        result = launch("evaluate.py", "--model", tmp_path / "p1" / "student", "--data_path", sst2_slice,
                        "--output", out, "--latency_samples", "0", "--batch_size", "16", processes=processes)
        assert result.returncode == 0, result
        scores[processes] = json.loads(out.read_text())
    assert scores[2]["num_examples"] == 120 and scores[2]["confusion_matrix"] == scores[1]["confusion_matrix"]
    assert scores[2]["accuracy"] == scores[1]["accuracy"]
