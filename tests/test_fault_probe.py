"""Faults found by probing the scripts with hostile settings, folders and files: each ends in one line
`error: ...` (or a one-line warning where the run can go on safely), exit 2, and nothing written or
damaged."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_clean_failure, run_script


def snapshot(folder: Path) -> dict:
    """Every file under folder, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files or folders (.NAME.partial-PID, .NAME.tmp-PID, .NAME.old-PID) left under folder."""
    return [str(p) for p in folder.rglob(".*") if any(tag in p.name for tag in (".partial", ".tmp-", ".old-"))]


def test_weights_that_become_non_finite_stop_the_run_and_keep_the_saved_model(sst2_slice, trained_teacher,
                                                                               tiny_models, tmp_path):
    """A learning rate of 1e39 is finite, but one AdamW update makes the weights inf: the loss of that
    only step was finite, so only a check of the weights stops the run before it saves them."""
    out = tmp_path / "out"
    shutil.copytree(trained_teacher, out / "teacher")
    before = snapshot(out / "teacher")
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--overwrite_output_dir",
                        "--learning_rate", "1e39", "--num_train_epochs", "1", "--max_train_samples", "16",
                        "--batch_size", "16", "--max_length", "64", "--report_to", "none")
    assert_clean_failure(result, "the weights became", "by the end of epoch 1", "--learning_rate", "fp16")
    assert snapshot(out / "teacher") == before
    assert not hidden_leftovers(out)
