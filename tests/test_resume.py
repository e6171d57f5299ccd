"""Never lose work: a run killed mid-epoch resumes to exactly the result of an uninterrupted one,
checkpoints rotate, finished models are not overwritten, and the same seed gives the same run."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_script
from conftest import resumable_teacher_args as teacher_args


def weights(folder):
    return (folder / "model.safetensors").read_bytes()


def outcome(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics["validation"], [(h["train_loss"], h["eval"]["loss"], h["eval"]["accuracy"]) for h in metrics["history"]]


def test_killed_run_resumes_to_the_same_result(sst2_slice, tiny_models, uninterrupted_teacher, tmp_path):
    out = tmp_path / "killed"
    checkpoints = out / "checkpoints" / "teacher"
    proc = subprocess.Popen([sys.executable, str(REPO / "trainer_teacher.py"),
                             *map(str, teacher_args(sst2_slice, tiny_models, out))],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 300
    # Kill it once a checkpoint inside the second epoch exists (batch 49 of 120: epoch 2, batch 9), so
    # the resumed run restarts mid-epoch, after an epoch boundary, with a best model already saved.
    while time.time() < deadline and proc.poll() is None:
        if any(49 <= int(p.name.removeprefix("step-")) < 80 for p in checkpoints.glob("step-*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in checkpoints.iterdir() if not p.name.startswith("."))
    assert 1 <= len(left) <= 2  # --save_total_limit 2

    resumed = run_script("trainer_teacher.py", *teacher_args(sst2_slice, tiny_models, out),
                         "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed
    where = re.search(r"resumed from .*step-(\d+): epoch (\d), (\d+) of its batches done", resumed.stdout)
    assert where and int(where[2]) >= 2 and int(where[3]) > 0, resumed.stdout  # mid-epoch, not at a boundary
    assert outcome(out / "teacher") == outcome(uninterrupted_teacher)  # exactly, on CPU
    assert weights(out / "teacher") == weights(uninterrupted_teacher)
    assert len([p for p in checkpoints.iterdir() if p.name.startswith("step-")]) == 2


def test_resuming_with_other_flags_is_refused(sst2_slice, tiny_models, tmp_path):
    out = tmp_path / "run"
    first = run_script("trainer_teacher.py", *teacher_args(sst2_slice, tiny_models, out), "--num_train_epochs", "1")
    assert first.returncode == 0, first
    again = run_script("trainer_teacher.py", *teacher_args(sst2_slice, tiny_models, out), "--num_train_epochs", "1",
                       "--resume_from_checkpoint", "latest", "--seed", "7")
    assert again.returncode == 2 and "--seed 42 then, 7 now" in again.stderr, again


def test_no_checkpoint_to_resume_from(sst2_slice, tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", *teacher_args(sst2_slice, tiny_models, tmp_path / "none"),
                        "--resume_from_checkpoint")
    assert result.returncode == 2 and "there is no checkpoint" in result.stderr, result


def test_a_finished_model_is_not_overwritten(sst2_slice, tiny_models, tmp_path):
    args = ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", tmp_path,
            "--num_train_epochs", "1", "--max_train_samples", "32"]
    assert run_script("trainer_teacher.py", *args).returncode == 0
    before = weights(tmp_path / "teacher")
    refused = run_script("trainer_teacher.py", *args, "--seed", "3")
    assert refused.returncode == 2 and "--overwrite_output_dir" in refused.stderr, refused
    assert weights(tmp_path / "teacher") == before
    replaced = run_script("trainer_teacher.py", *args, "--seed", "3", "--overwrite_output_dir")
    assert replaced.returncode == 0, replaced
    assert weights(tmp_path / "teacher") != before


def test_same_seed_same_run(sst2_slice, trained_teacher, tiny_models, tmp_path):
    args = ["--data_path", sst2_slice, "--teacher_model", trained_teacher, "--student_model",
            tiny_models["student_base"], "--num_train_epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3"]
    runs = []
    for name in ("a", "b"):
        result = run_script("distilled-bert.py", *args, "--output_dir", tmp_path / name)
        assert result.returncode == 0, result
        runs.append(tmp_path / name / "student")
    assert outcome(runs[0]) == outcome(runs[1]) and weights(runs[0]) == weights(runs[1])
    saved = json.loads((runs[0] / "training_args.json").read_text())
    assert saved["args"]["seed"] == 42 and {"torch", "transformers", "accelerate"} <= set(saved["versions"])


@pytest.mark.parametrize("value", ["0", "often"])
def test_bad_checkpointing_steps(value, tmp_path):
    result = run_script("trainer_teacher.py", "--checkpointing_steps", value, "--output_dir", tmp_path / "out")
    assert result.returncode == 2 and "--checkpointing_steps must be" in result.stderr, result
