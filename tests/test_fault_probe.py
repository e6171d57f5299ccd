"""Faults found by probing the scripts with hostile settings, folders and files: each ends in one line
`error: ...` (or a one-line warning where the run can go on safely), exit 2, and nothing written or
damaged."""

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import assert_clean_failure, distill_args, hidden_leftovers, run_script, snapshot


def test_random_states_that_cannot_be_restored_make_the_checkpoint_unusable(sst2_slice, tiny_models, tmp_path):
    """Accelerate skips a random-state file that weights_only loading refuses, and the resumed run then
    differs from the uninterrupted one. Such a checkpoint is named damaged instead: refused when named,
    skipped by latest for the one before it, from which the run ends as the uninterrupted one did."""
    import datetime

    import torch

    out = tmp_path / "out"
    args = ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            "--num_train_epochs", "1", "--max_train_samples", "64", "--batch_size", "8", "--learning_rate", "1e-3",
            "--max_length", "64", "--checkpointing_steps", "4", "--report_to", "none", "--mixed_precision", "no"]
    first = run_script("trainer_teacher.py", *args)
    assert first.returncode == 0, first
    uninterrupted = (out / "teacher" / "model.safetensors").read_bytes()
    steps = out / "checkpoints" / "teacher"
    states_file = steps / "step-8" / "random_states_0.pkl"
    states = torch.load(states_file, weights_only=False)
    states["saved_on"] = datetime.date(2024, 1, 1)  # a global weights_only loading refuses
    torch.save(states, states_file)
    before = snapshot(out)

    named = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", steps / "step-8")
    assert_clean_failure(named, "step-8: the checkpoint is damaged (random_states_0.pkl cannot be restored",
                         "the usable ones in", "are step-4; resume from one of them")
    assert snapshot(out) == before

    latest = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", "latest")
    assert latest.returncode == 0, latest
    assert "warning: skipping the damaged checkpoint" in latest.stdout and "random_states_0.pkl" in latest.stdout
    assert (out / "teacher" / "model.safetensors").read_bytes() == uninterrupted


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


def quick_teacher(sst2_slice, tiny_models, out, **changes):
    """A one-epoch teacher on 32 sentences through the API, over whatever out/teacher holds."""
    from kd_bert import DataConfig, TrainConfig, train_teacher

    settings = dict(output_dir=out, num_train_epochs=1, batch_size=16, max_train_samples=32, learning_rate=1e-3,
                    overwrite_output_dir=True, report_to="none", mixed_precision="no", **changes)
    return train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=sst2_slice, max_length=64),
                         TrainConfig(**settings))


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["sidecar", "weights"])
def test_a_full_disk_while_saving_keeps_the_previous_model_and_leaves_nothing_behind(sst2_slice, trained_teacher,
                                                                                    tiny_models, tmp_path,
                                                                                    monkeypatch, where):
    """The disk fills up while the best model is saved: in a sidecar file (an OSError from a write) or in
    the weights (safetensors reports it from Rust, as an error that is not an OSError)."""
    from kd_bert import UserError

    out = tmp_path / "out"
    shutil.copytree(trained_teacher, out / "teacher")
    before = snapshot(out / "teacher")
    if where == "sidecar":
        write_bytes = Path.write_bytes
        monkeypatch.setattr(Path, "write_bytes", lambda self, data: full_disk() if self.name.startswith(
            ".metrics.json") else write_bytes(self, data))
    else:
        def save_file(*args, **kwargs):
            raise RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                               '"No space left on device" })')
        monkeypatch.setattr("transformers.modeling_utils.safe_save_file", save_file)
    with pytest.raises(UserError) as error:
        quick_teacher(sst2_slice, tiny_models, out)
    assert str(error.value).startswith(f"no space left on the device to write {out / 'teacher'}; "
                                       f"{out / 'teacher'} is unchanged. Free some space"), error.value
    assert snapshot(out / "teacher") == before
    assert not hidden_leftovers(tmp_path) and not (out / ".kd-bert.lock").exists()


def test_a_full_disk_in_a_file_write_leaves_no_temporary(tmp_path, monkeypatch):
    from kd_bert import UserError
    from kd_bert.safety.atomic import write_json

    target = tmp_path / "metrics.json"
    target.write_text('{"accuracy": 0.9}\n')
    real_write = os.write
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: (real_write(os.open(self, os.O_WRONLY | os.O_CREAT),
                                                                            data[:5]), full_disk()))
    with pytest.raises(UserError, match=f"^no space left on the device to write {target}; {target} is unchanged"):
        write_json(target, {"accuracy": 0.1})
    assert target.read_text() == '{"accuracy": 0.9}\n' and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_folder_where_the_output_lock_file_belongs_is_one_line(sst2_slice, tiny_models, tmp_path):
    out = tmp_path / "out"
    (out / ".kd-bert.lock").mkdir(parents=True)
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--num_train_epochs", "1")
    assert_clean_failure(result, f"{out / '.kd-bert.lock'} is a folder, where the lock file")
    assert [p.name for p in out.iterdir()] == [".kd-bert.lock"]


def test_a_symlinked_model_folder_is_replaced_where_it_points(sst2_slice, trained_teacher, tiny_models, tmp_path):
    real = tmp_path / "disk" / "teacher"
    shutil.copytree(trained_teacher, real)
    out = tmp_path / "out"
    out.mkdir()
    (out / "teacher").symlink_to(real, target_is_directory=True)
    old_weights = (real / "model.safetensors").read_bytes()
    result = quick_teacher(sst2_slice, tiny_models, out)
    assert (out / "teacher").is_symlink() and (out / "teacher").resolve() == real.resolve()
    assert (real / "model.safetensors").read_bytes() != old_weights  # the new model, where the link points
    assert json.loads((real / "metrics.json").read_text())["train_examples"] == 32
    assert result.metrics["train_examples"] == 32
    assert not hidden_leftovers(tmp_path)


def test_a_full_disk_while_checkpointing_leaves_no_partial_checkpoint(sst2_slice, tiny_models, tmp_path,
                                                                      monkeypatch):
    import torch

    from kd_bert import UserError

    save = torch.save
    calls = []

    def fills_up(obj, f, *args, **kwargs):  # the second checkpoint's first file fills the disk
        calls.append(str(f))
        if "step-2" in str(f):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_up)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="no space left on the device to write .*step-2; the earlier checkpoints"):
        quick_teacher(sst2_slice, tiny_models, out, checkpointing_steps="1")
    checkpoints = out / "checkpoints" / "teacher"
    assert [p.name for p in checkpoints.iterdir()] == ["step-1"] and any("step-2" in c for c in calls)
