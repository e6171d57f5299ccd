"""The model folders a run writes: a refused run leaves a finished model as it was, and a distillation
that would write over its own teacher (the same folder, one inside the other, or a symlink) is refused."""

from __future__ import annotations

import shutil

import pytest
from helpers import assert_clean_failure, distill_args, listing, run_script, snapshot, teacher_job

from kd_bert import (
    DataConfig,
    TrainConfig,
    UserError,
    train_teacher,
)


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


def test_a_distillation_that_would_write_over_its_own_teacher_is_refused(sst2_slice, trained_teacher, tiny_models,
                                                                         tmp_path):
    teacher = tmp_path / "a" / "student"  # the teacher sits where the student is written
    shutil.copytree(trained_teacher, teacher)
    inner = tmp_path / "b" / "student" / "teacher"  # the teacher lies inside the student folder written
    shutil.copytree(trained_teacher, inner)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "student").symlink_to(teacher, target_is_directory=True)  # the same folder, by a symlink
    before = snapshot(tmp_path)
    cases = [
        (teacher, tmp_path / "a", f"the model folder {tmp_path / 'a' / 'student'} is --teacher_model {teacher}"),
        (inner, tmp_path / "b", f"the model folder {tmp_path / 'b' / 'student'} holds --teacher_model {inner}"),
        (teacher, tmp_path / "c", f"the model folder {tmp_path / 'c' / 'student'} is --teacher_model {teacher}"),
    ]
    for source, output_dir, message in cases:
        result = run_script("distilled-bert.py", *distill_args(sst2_slice, source, tiny_models["student_base"],
                                                               output_dir, "--overwrite_output_dir"))
        assert_clean_failure(result, message)
        assert snapshot(tmp_path) == before
