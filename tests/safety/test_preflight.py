"""Fail before training, not after it: every path a run writes is checked before anything loads, and an
output that would replace what the run reads is refused. Each refusal leaves nothing behind. Most cases
run in-process (they stop before any model loads); a few run the scripts to check the one-line
contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, assert_clean_failure, listing, run_script, snapshot, teacher_job

from kd_bert import (
    DataConfig,
    DistillConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    distill,
    evaluate,
)


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


def test_an_evaluation_output_that_would_replace_what_it_reads_is_refused(sst2_slice, trained_teacher, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained_teacher, model)
    link = tmp_path / "link"
    link.symlink_to(model, target_is_directory=True)
    config = tmp_path / "eval.json"
    config.write_text(json.dumps({"latency_samples": 0}))
    before = snapshot(model), snapshot(sst2_slice), config.read_bytes()
    cases = [
        (["--output", model / "metrics.json"], f"--output {model / 'metrics.json'} lies inside --model {model}"),
        (["--output", link / "metrics.json"], "lies inside --model"),  # the same folder, through a symlink
        (["--report_dir", model], f"--report_dir {model} is --model {model}, which this run reads"),
        (["--report_dir", sst2_slice], f"--report_dir {sst2_slice} is --data_path {sst2_slice}"),
        (["--output", sst2_slice / "dev.tsv"], f"lies inside --data_path {sst2_slice}"),
        (["--predictions_file", model / "config.json"], "lies inside --model"),
        (["--config", config, "--output", config], f"--output {config} is --config {config}"),
    ]
    for flags, message in cases:
        result = run_script("evaluate.py", "--model", model, "--data_path", sst2_slice, *flags)
        assert_clean_failure(result, message)
    assert (snapshot(model), snapshot(sst2_slice), config.read_bytes()) == before
    # Predictions beside the model, as the default file is, replace nothing it holds.
    result = run_script("evaluate.py", "--model", model, "--data_path", sst2_slice, "--predictions_file",
                        model / "predictions_dev.tsv", "--latency_samples", "0", "--max_eval_samples", "8")
    assert result.returncode == 0 and (model / "predictions_dev.tsv").is_file(), result


def test_a_work_folder_is_new_empty_or_made_by_the_same_owner(tmp_path):
    """Benchmarks replace what their work folder holds: a folder holding a user's files is never theirs."""
    from kd_bert.safety.preflight import WORK_MARK, claim_work_dir

    made = claim_work_dir(tmp_path / "new" / "work", "bench-a")
    assert (made / WORK_MARK).read_text().strip() == "bench-a"
    (made / "model.safetensors").write_bytes(b"from an earlier run of bench-a")
    assert claim_work_dir(made, "bench-a") == made  # its own earlier run: taken again
    with pytest.raises(UserError, match="written by bench-a, which this run would replace"):
        claim_work_dir(made, "bench-b")
    (tmp_path / "empty").mkdir()
    assert claim_work_dir(tmp_path / "empty", "bench-b").is_dir()
    users = tmp_path / "models"
    (users / "teacher").mkdir(parents=True)
    (users / "teacher" / "config.json").write_text("{}")
    before = listing(users)
    with pytest.raises(UserError, match="written by something else"):
        claim_work_dir(users, "bench-a")
    assert listing(users) == before  # not even the mark was written


def test_a_work_folder_in_use_by_a_live_run_is_refused(tmp_path):
    """Two runs of one benchmark in one folder: the second would delete the first's live files."""
    work = tmp_path / "work"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from kd_bert.safety.preflight import "
                               f"claim_work_dir; claim_work_dir({str(work)!r}, 'bench-a'); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        from kd_bert.safety.preflight import claim_work_dir

        with pytest.raises(UserError, match="in use by another run of bench-a"):
            claim_work_dir(work, "bench-a")
    finally:
        holder.kill()
        holder.wait()
    assert claim_work_dir(work, "bench-a") == work.resolve()  # its owner gone, the folder is free again
