"""One run per output folder: a second run into a busy folder stops and names the first, a killed run's
lock is taken over, the lock is released when a run ends, and a folder where the lock file belongs is one
line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import FAST_TRAINING, REPO, assert_clean_failure, listing, logged, run_script

from kd_bert import UserError
from kd_bert.safety.lock import LOCK_FILE, output_lock


@pytest.mark.slow  # two script processes, the second started while the first holds the folder, about 4 s; CI runs it with -m slow
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


def test_a_folder_where_the_output_lock_file_belongs_is_one_line(sst2_slice, tiny_models, tmp_path):
    out = tmp_path / "out"
    (out / ".kd-bert.lock").mkdir(parents=True)
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--num_train_epochs", "1")
    assert_clean_failure(result, f"{out / '.kd-bert.lock'} is a folder, where the lock file")
    assert [p.name for p in out.iterdir()] == [".kd-bert.lock"]
