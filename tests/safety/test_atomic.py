"""Files and folders are written whole or not at all: a stop or a full disk while a file or a model is
written leaves the previous one and no temporary, and a symlinked model folder is replaced where it
points."""

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from helpers import assert_clean_failure, hidden_leftovers, quick_teacher, quick_teacher_args, run_script, snapshot

from kd_bert.safety import stopping
from kd_bert.safety.atomic import write_atomically


def test_a_stopped_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "logits.pt"
    target.write_bytes(b"old")

    def stopped(*args):
        raise stopping.Stopped(signal.SIGTERM)

    monkeypatch.setattr(os, "replace", stopped)
    with pytest.raises(stopping.Stopped):
        write_atomically(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["logits.pt"] and target.read_bytes() == b"old"


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# What safetensors raises on a full disk, from Rust: not an OSError, and worded by its version.
SAFETENSORS_FULL_DISK = {
    "weights": 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })',
    "weights-0.8": "Error while serializing: I/O error: No space left on device (os error 28)",
}


@pytest.mark.parametrize("where", ["sidecar", *SAFETENSORS_FULL_DISK])
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
            raise RuntimeError(SAFETENSORS_FULL_DISK[where])
        monkeypatch.setattr("transformers.modeling_utils.safe_save_file", save_file)
    with pytest.raises(UserError) as error:
        quick_teacher(sst2_slice, tiny_models, out)
    assert str(error.value).startswith(f"no space left on the device to write {out / 'teacher'}; "
                                       f"{out / 'teacher'} is unchanged. Free some space"), error.value
    assert snapshot(out / "teacher") == before
    assert not hidden_leftovers(tmp_path) and not (out / ".kd-bert.lock").exists()


@pytest.mark.slow  # a script process on a disk made full, about 5 s; CI runs it with -m slow
def test_a_full_disk_while_the_script_saves_its_model_is_one_line(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """trainer_teacher.py as a user runs it, on a disk that fills up as the weights are written (safetensors'
    own error, injected into a fresh interpreter): one line on stderr, exit status 2, the model already there
    byte for byte, nothing left behind."""
    fake = tmp_path / "full-disk"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(
        "import safetensors.torch\n\n\n"
        "def save_file(*args, **kwargs):\n"
        f"    raise RuntimeError({SAFETENSORS_FULL_DISK['weights-0.8']!r})\n\n\n"
        "safetensors.torch.save_file = save_file\n")
    out = tmp_path / "out"
    shutil.copytree(trained_teacher, out / "teacher")
    before = snapshot(out / "teacher")
    path = os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))
    result = run_script("trainer_teacher.py", *quick_teacher_args(sst2_slice, tiny_models, out),
                        "--overwrite_output_dir", "--max_train_samples", "32", "--report_to", "none",
                        env={"PYTHONPATH": path, "KD_TEST_FRESH_PROCESSES": "1"})
    assert_clean_failure(result, f"no space left on the device to write {out / 'teacher'}",
                         f"{out / 'teacher'} is unchanged. Free some space")
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
