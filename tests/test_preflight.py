"""Fail before training, not after it: every path a run writes is checked before anything loads, one
run holds an output folder at a time, --max_length is checked against the models' positions and the
embedding table against the tokenizer, and out-of-range numbers are refused. Each refusal leaves
nothing behind. Most cases run in-process (they stop before any model loads); a few run the scripts
to check the one-line contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAST_TRAINING, REPO, assert_clean_failure, listing, logged, run_script

from kd_bert import (
    DataConfig,
    DistillConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    distill,
    evaluate,
    train_teacher,
)
from kd_bert.safety.lock import LOCK_FILE, output_lock


def make_unwritable(folder: Path) -> None:
    """Immutable for root (who may write in any read-only folder), read-only for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
    elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without chattr +i: no folder here is unwritable")


def make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)])
    else:
        folder.chmod(0o755)


@pytest.fixture
def unwritable(tmp_path):
    """A folder holding one file, that this process cannot write in."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "kept.txt").write_text("kept\n")
    make_unwritable(folder)
    try:
        yield folder
    finally:
        make_writable(folder)


def teacher_job(tiny_models, sst2_slice, **train):
    return lambda: train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sst2_slice)),
                                 TrainConfig(**train))


# ---------------------------------------------------------------- paths, before anything loads


def test_an_output_dir_that_cannot_be_written_stops_the_run_at_once(unwritable, tiny_models, sst2_slice):
    before = listing(unwritable)
    with pytest.raises(UserError, match="cannot write in .*read-only"):
        teacher_job(tiny_models, sst2_slice, output_dir=str(unwritable / "models"))()
    assert listing(unwritable) == before


@pytest.mark.parametrize("where", ["output_dir", "model folder", "checkpoint folder", "under a file"])
def test_a_file_where_a_folder_is_needed(where, tmp_path, tiny_models, sst2_slice):
    out = tmp_path / "models"
    blocker = {"output_dir": out, "model folder": out / "teacher", "checkpoint folder": out / "checkpoints",
               "under a file": tmp_path / "file"}[where]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file\n")
    output_dir = tmp_path / "file" / "models" if where == "under a file" else out
    before = listing(tmp_path)
    with pytest.raises(UserError, match="is a file"):
        teacher_job(tiny_models, sst2_slice, output_dir=str(output_dir), checkpointing_steps="epoch")()
    assert listing(tmp_path) == before


def test_an_unwritable_teacher_logit_cache_is_refused_before_loading(unwritable, trained_teacher, tiny_models,
                                                                     sst2_slice, tmp_path):
    run = lambda cache: distill(DistillConfig(teacher_model=str(trained_teacher),  # noqa: E731
                                              student_model=str(tiny_models["student_base"]), cache_dir=cache),
                                DataConfig(data_path=str(sst2_slice)), TrainConfig(output_dir=str(tmp_path / "out")))
    with pytest.raises(UserError, match="--cache_dir .*: cannot write in .*--teacher_logits online"):
        run(str(unwritable / "cache"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["output", "predictions_file", "report_dir", "export_onnx", "save_quantized"])
def test_evaluate_checks_what_it_writes_before_scoring(flag, trained_teacher, sst2_slice, tmp_path):
    folder, file = tmp_path / "a-folder", tmp_path / "a-file.json"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    file.write_text("{}\n")
    target, phrase = {"output": (folder, "is a folder"), "predictions_file": (folder, "is a folder"),
                      "report_dir": (file, "is a file"), "export_onnx": (folder, "holds other files"),
                      "save_quantized": (trained_teacher, "is a model this run reads")}[flag]
    extra = {"quantize": "onnx-int8"} if flag == "save_quantized" else {}
    before, model_before = listing(tmp_path), listing(trained_teacher)
    with pytest.raises(UserError, match=phrase):
        evaluate(EvalConfig(model=str(trained_teacher), **{flag: str(target)}, **extra),
                 DataConfig(data_path=str(sst2_slice)))
    assert listing(tmp_path) == before and listing(trained_teacher) == model_before


def test_an_unwritable_model_folder_needs_predictions_file(trained_teacher, sst2_slice, tmp_path):
    """The test split has no labels: its predictions go beside the model unless told otherwise."""
    model = tmp_path / "model"
    shutil.copytree(trained_teacher, model)
    make_unwritable(model)
    try:
        with pytest.raises(UserError, match="predictions file .*: cannot write in .*; give --predictions_file a path"):
            evaluate(EvalConfig(model=str(model), split="test", latency_samples=0),
                     DataConfig(data_path=str(sst2_slice)))
    finally:
        make_writable(model)


def test_evaluate_output_that_is_a_folder_is_one_line_and_leaves_no_temp_file(trained_teacher, sst2_slice, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--output", out)
    assert_clean_failure(result, f"--output {out} is a folder", "metrics.json")
    assert listing(tmp_path) == {"results": None}


def test_output_dir_that_is_a_file_is_one_line(tiny_models, sst2_slice, tmp_path):
    out = tmp_path / "models"
    out.write_text("not a folder\n")
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out)
    assert_clean_failure(result, f"--output_dir {out} is a file")
    assert out.read_text() == "not a folder\n" and listing(tmp_path) == {"models": b"not a folder\n"}


# ---------------------------------------------------------------- one run per output folder


def test_a_second_run_into_a_busy_folder_stops_and_names_the_first(tiny_models, sst2_slice, tmp_path):
    out = tmp_path / "models"
    args = ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            *FAST_TRAINING, "--num_train_epochs", "20", "--checkpointing_steps", "epoch"]
    first = subprocess.Popen([sys.executable, str(REPO / "trainer_teacher.py"), *map(str, args)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / LOCK_FILE).is_file() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second one started"
        second = run_script("trainer_teacher.py", *args)
        assert_clean_failure(second, "another run is writing to", f"pid {first.pid}", "trainer_teacher.py",
                             "another --output_dir")
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()  # SIGKILL: no chance to remove its lock file
        first.wait()
    stale = json.loads((out / LOCK_FILE).read_text())
    assert stale["pid"] == first.pid
    left = {path: content for path, content in listing(out).items() if path != LOCK_FILE}
    with logged() as said, output_lock(out):  # a dead run's lock is taken over
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert said and f"pid {first.pid}" in said[0] and "no longer running" in said[0]
    assert listing(out) == left  # released, and what the killed run left is kept


def test_the_lock_is_released_and_a_folder_made_for_it_removed(tmp_path):
    out = tmp_path / "new" / "models"
    with pytest.raises(RuntimeError):
        with output_lock(out):
            assert (out / LOCK_FILE).is_file()
            with pytest.raises(UserError, match=f"pid {os.getpid()}"):  # held: a second claim is refused
                with output_lock(out):
                    pass
            raise RuntimeError("the run failed")
    assert listing(tmp_path) == {}  # the folders made only for the lock are gone


def test_a_finished_run_leaves_no_lock(trained_teacher):
    assert not (trained_teacher.parent / LOCK_FILE).exists() and (trained_teacher / "model.safetensors").is_file()


def test_refusals_leave_an_existing_model_untouched(trained_teacher, tiny_models, sst2_slice, tmp_path):
    """A refused run aimed at a folder with a finished model changes nothing in it."""
    out = tmp_path / "models"
    shutil.copytree(trained_teacher, out / "teacher")
    before = listing(out)
    for config in (TrainConfig(output_dir=str(out)), TrainConfig(output_dir=str(out), overwrite_output_dir=True)):
        with pytest.raises(UserError):
            train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sst2_slice), max_length=4096),
                          config)
    with pytest.raises(UserError, match="already holds a model"):
        teacher_job(tiny_models, sst2_slice, output_dir=str(out))()
    assert listing(out) == before
