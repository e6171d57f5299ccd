"""What the scripts wrote before the package became kd_bert still loads and resumes: model folders (a
fine-tuned teacher, a distilled BiLSTM with its own model class), the teacher-logit cache and training
checkpoints, all made here by the last commit of the old layout (the kd_common package), read back by
today's code."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, resumable_teacher_args, run_script

# The last commit whose package was kd_common (before the move to kd_bert/ and its subpackages).
OLD_LAYOUT = "aad61fbdbd50fc73cb570722f5cb8dc11b6b1384"
OLD_FILES = ("kd_common", "trainer_teacher.py", "distilled-bert.py", "evaluate.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def old_code(tmp_path_factory) -> Path:
    """The old layout's package and scripts, as `git archive` gives them."""
    folder = tmp_path_factory.mktemp("old-layout")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", OLD_LAYOUT, *OLD_FILES],
                             capture_output=True)
    assert archive.returncode == 0, ("the old layout's commit must be in this clone's history: "
                                     + archive.stderr.decode(errors="replace"))
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    assert (folder / "kd_common" / "training.py").is_file()
    return folder


def run_old(old_code: Path, script: str, *args, cache: Path) -> subprocess.CompletedProcess:
    """A script of the old layout, in a fresh interpreter that cannot see kd_bert."""
    env = {**os.environ, "PYTHONPATH": str(old_code), "HF_HUB_OFFLINE": "1", "KD_BERT_CACHE": str(cache),
           "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(old_code / script), *map(str, args)], cwd=old_code, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "kd_bert" not in result.stdout + result.stderr
    return result


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_teacher_trained_by_the_old_layout_resumes_and_loads(old_code, sst2_slice, tiny_models,
                                                                uninterrupted_teacher, tmp_path):
    """A checkpoint the old code wrote mid-run resumes under today's code to exactly the teacher that
    today's code trains uninterrupted; the old teacher folder evaluates to the accuracy it recorded."""
    old_out = tmp_path / "old"
    run_old(old_code, "trainer_teacher.py", *resumable_teacher_args(sst2_slice, tiny_models, old_out),
            cache=tmp_path / "cache")
    old_teacher = old_out / "teacher"

    scored = run_script("evaluate.py", "--model", old_teacher, "--data_path", sst2_slice, "--max_length", "64",
                        "--latency_samples", "0", "--output", tmp_path / "eval.json")
    assert scored.returncode == 0, scored
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] == pytest.approx(
        metrics(old_teacher)["validation"]["accuracy"], abs=1e-9)

    # The old run's output folder, as if stopped at its older kept checkpoint: resume it with today's code.
    new_out = tmp_path / "continued"
    shutil.copytree(old_out, new_out)
    kept = sorted((new_out / "checkpoints" / "teacher").glob("step-*"), key=lambda p: int(p.name[5:]))
    assert len(kept) == 2, kept  # --save_total_limit 2
    shutil.rmtree(kept[1])
    resumed = run_script("trainer_teacher.py", *resumable_teacher_args(sst2_slice, tiny_models, new_out),
                         "--resume_from_checkpoint", "latest", "--overwrite_output_dir")
    assert resumed.returncode == 0, resumed
    assert f"resumed from {kept[0]}" in resumed.stdout, resumed.stdout
    assert ((new_out / "teacher" / "model.safetensors").read_bytes()
            == (uninterrupted_teacher / "model.safetensors").read_bytes())
    assert metrics(new_out / "teacher")["validation"] == metrics(uninterrupted_teacher)["validation"]


def test_the_old_layouts_cache_and_bilstm_folder_are_read(old_code, sst2_slice, tiny_models, uninterrupted_teacher,
                                                         tmp_path):
    """Teacher logits the old code cached are reused by today's code, which then trains the same
    BiLSTM bit for bit; the old BiLSTM folder (its own model class) evaluates as it recorded."""
    cache = tmp_path / "cache"
    args = ["--teacher_model", uninterrupted_teacher, "--student_model", "bilstm", "--data_path", sst2_slice,
            "--num_train_epochs", "1", "--batch_size", "16", "--max_length", "64", "--cache_dir", cache]
    old = run_old(old_code, "distilled-bert.py", *args, "--output_dir", tmp_path / "old", cache=cache)
    assert "computed and cached" in old.stdout, old.stdout
    old_student = tmp_path / "old" / "student"

    new = run_script("distilled-bert.py", *args, "--output_dir", tmp_path / "new")
    assert new.returncode == 0, new
    assert "reused" in new.stdout and "computed and cached" not in new.stdout, new.stdout
    assert ((tmp_path / "new" / "student" / "model.safetensors").read_bytes()
            == (old_student / "model.safetensors").read_bytes())

    scored = run_script("evaluate.py", "--model", old_student, "--data_path", sst2_slice, "--max_length", "64",
                        "--latency_samples", "0", "--output", tmp_path / "eval.json")
    assert scored.returncode == 0, scored
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] == pytest.approx(
        metrics(old_student)["validation"]["accuracy"], abs=1e-9)
