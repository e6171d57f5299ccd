"""Never lose work: a run killed mid-epoch resumes to exactly the result of an uninterrupted one,
checkpoints rotate, damaged checkpoints (each kind of file cut short, random states that cannot be
restored) are skipped or refused, a resumption with other settings is refused, a full disk leaves no
partial checkpoint, finished models are not overwritten, and the same seed gives the same run."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    REPO,
    assert_clean_failure,
    one_line,
    outcome,
    quick_teacher,
    run_script,
    snapshot,
    teacher_in_process,
    weights,
)
from helpers import resumable_teacher_args as teacher_args

from kd_bert import DataConfig, TrainConfig, cli
from kd_bert.errors import UserError
from kd_bert.safety.checkpoints import (
    check_same_run,
    checkpoint_problem,
    resolve_resume,
    run_args,
)
from kd_bert.safety.file_checks import file_problem


@pytest.mark.slow  # a run killed with SIGKILL and resumed, against an uninterrupted one, about 10 s; CI runs it with -m slow
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


def test_resuming_with_other_flags_is_refused(teacher_run, tiny_models, tmp_path):
    """Another seed, and another model (which would otherwise fail on the weights' sizes): both named."""
    out, args = copy_run(teacher_run, tmp_path)
    args[args.index(tiny_models["teacher_base"])] = tiny_models["student_base"]
    before = snapshot(out)
    again = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", "latest", "--seed", "7")
    assert_clean_failure(again, "--seed 42 then, 7 now",
                   f"--model_name_or_path {tiny_models['teacher_base']} then, {tiny_models['student_base']} now")
    assert snapshot(out) == before


def test_no_checkpoint_to_resume_from(tmp_path):
    import trainer_teacher

    flags = cli.parse(trainer_teacher.parse_args(), ["--resume_from_checkpoint"])
    assert flags.resume_from_checkpoint == "latest"  # the flag alone means the newest checkpoint
    with pytest.raises(UserError, match="there is no checkpoint in"):
        resolve_resume(flags.resume_from_checkpoint, tmp_path / "checkpoints" / "teacher")


def test_a_finished_model_is_not_overwritten(teacher_run, tmp_path, capsys, monkeypatch):
    out, args = copy_run(teacher_run, tmp_path)
    before = snapshot(out)
    status, stderr = teacher_in_process([*args, "--seed", "3"], capsys, monkeypatch)
    assert status == 2 and stderr.startswith("error: ") and "--overwrite_output_dir" in stderr, stderr
    assert snapshot(out) == before
    replaced = run_script("trainer_teacher.py", *args, "--seed", "3", "--max_train_samples", "32",
                          "--overwrite_output_dir")
    assert replaced.returncode == 0, replaced
    assert weights(out / "teacher") != before


def test_same_seed_same_run(student_run, tmp_path):
    source, args = student_run
    # Its own, empty cache: both runs compute the teacher's logits (the fixture's run did in its own cache too).
    again = run_script("distilled-bert.py", *args, "--output_dir", tmp_path, "--cache_dir", tmp_path / "cache")
    assert again.returncode == 0, again
    runs = [source / "student", tmp_path / "student"]
    assert outcome(runs[0]) == outcome(runs[1]) and weights(runs[0]) == weights(runs[1])
    saved = json.loads((runs[0] / "training_args.json").read_text())
    assert saved["args"]["seed"] == 42 and {"torch", "transformers", "accelerate"} <= set(saved["versions"])


# ---------------------------------------------------------------- damaged checkpoints, changed settings


# One checkpointed run of each script per module; each test damages or resumes its own copy.
# 320 sentences in batches of 16: 20 batches, a checkpoint every 5 (step-5 ... step-20).
SHORT = ["--num_train_epochs", "1", "--batch_size", "16", "--max_length", "64", "--learning_rate", "1e-3"]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, sst2_slice, tiny_models):
    """(output folder, flags) of a finished teacher run with checkpoints step-5, 10, 15 and 20."""
    out = tmp_path_factory.mktemp("checkpointed-teacher")
    args = ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], *SHORT,
            "--checkpointing_steps", "5"]
    result = run_script("trainer_teacher.py", *args, "--output_dir", out)
    assert result.returncode == 0, result
    return out, args


@pytest.fixture(scope="module")
def student_run(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """(output folder, flags) of a finished distillation with checkpoints step-10 and step-20."""
    out = tmp_path_factory.mktemp("checkpointed-student")
    args = ["--data_path", sst2_slice, "--teacher_model", trained_teacher, "--student_model",
            tiny_models["student_base"], *SHORT, "--checkpointing_steps", "10"]
    # A module fixture is set up before each test's own cache: give it one of its own, so that it computes
    # the teacher's logits rather than reusing ones an earlier module computed with other batch sizes
    # (equal up to float rounding, which a byte-for-byte comparison would see).
    result = run_script("distilled-bert.py", *args, "--output_dir", out, "--cache_dir", out / "cache")
    assert result.returncode == 0, result
    return out, args


def copy_run(run, tmp_path):
    """This test's own copy of a module run: its folder, and the flags that continue it."""
    source, args = run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    return out, [*args, "--output_dir", out]


def steps(out, role="teacher"):
    return out / "checkpoints" / role


def truncate(path, size):
    path.write_bytes(path.read_bytes()[:size])



def test_latest_skips_a_damaged_checkpoint(teacher_run, sst2_slice, tiny_models, tmp_path):
    out, args = copy_run(teacher_run, tmp_path)
    truncate(steps(out) / "step-20" / "model.safetensors", 1024)
    # The same data and model, spelled otherwise: a relative path and a trailing slash name the same folders.
    args[args.index(sst2_slice)] = os.path.relpath(sst2_slice, REPO)
    args[args.index(tiny_models["teacher_base"])] = f"{tiny_models['teacher_base']}/"
    resumed = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed
    warning = [line for line in resumed.stdout.splitlines() if line.startswith("warning: skipping")]
    assert len(warning) == 1 and "step-20 (model.safetensors is truncated: 1,024 bytes" in warning[0], resumed
    assert warning[0].endswith(f"resuming from {steps(out) / 'step-15'}"), resumed
    assert re.search(r"resumed from \S+step-15: epoch 1, 15 of its batches done", resumed.stdout), resumed
    assert file_problem(steps(out) / "step-20" / "model.safetensors") is None  # written again by the resumed run
    # The same result as the uninterrupted run.
    assert weights(out / "teacher") == weights(teacher_run[0] / "teacher")


def test_a_named_damaged_checkpoint_is_refused(teacher_run, tmp_path):
    out, args = copy_run(teacher_run, tmp_path)
    truncate(steps(out) / "step-20" / "optimizer.bin", 4096)
    truncate(steps(out) / "step-5" / "random_states_0.pkl", 100)
    before = snapshot(out)
    result = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", steps(out) / "step-20")
    assert_clean_failure(result, "step-20: the checkpoint is damaged (optimizer.bin is truncated",
                   "the usable ones in", "are step-15, step-10; resume from one of them")
    assert snapshot(out) == before


def test_no_usable_checkpoint_is_refused(teacher_run, tmp_path):
    out, _ = copy_run(teacher_run, tmp_path)
    (steps(out) / "step-20" / "model.safetensors").unlink()
    (steps(out) / "step-15" / "progress.json").write_text('{"epoch": 1, "st')
    (steps(out) / "step-10" / "sums-0.json").write_text("")
    truncate(steps(out) / "step-5" / "scheduler.bin", 600)
    # In-process: test_a_named_damaged_checkpoint_is_refused runs the script to the same kind of error.
    with pytest.raises(UserError) as latest:
        resolve_resume("latest", steps(out))
    for phrase in ("every checkpoint in", "is damaged", "step-20: model.safetensors is missing",
                   "step-15: progress.json is unreadable", "step-10: sums-0.json is unreadable",
                   "step-5: scheduler.bin is truncated", "start fresh"):
        assert phrase in str(latest.value)
    with pytest.raises(UserError, match=r"damaged \(scheduler.bin .*; there is no usable checkpoint in"):
        resolve_resume(str(steps(out) / "step-5"), steps(out))


def test_distillation_resumed_with_another_alpha_and_temperature_is_refused(student_run, tmp_path):
    out, args = copy_run(student_run, tmp_path)
    before = snapshot(out)
    result = run_script("distilled-bert.py", *args, "--resume_from_checkpoint", "latest", "--alpha", "0.9",
                        "--temperature", "4")
    assert_clean_failure(result, f"cannot resume from {steps(out, 'student') / 'step-20'}", "--temperature 2.0 then, 4.0 now",
                   "--alpha 0.5 then, 0.9 now", "start fresh without --resume_from_checkpoint")
    assert snapshot(out) == before


def test_a_checkpoint_that_does_not_load_is_one_line(teacher_run, tiny_models, tmp_path):
    """A checkpoint from before every setting was recorded is not judged on --model_name_or_path: its
    weights then fail to load into the other model, and that is said in one line too."""
    out, args = copy_run(teacher_run, tmp_path)
    progress_file = steps(out) / "step-20" / "progress.json"
    progress = json.loads(progress_file.read_text())
    old_keys = ("seed", "batch_size", "learning_rate", "num_train_epochs", "gradient_accumulation_steps",
                "max_train_samples", "group_by_length", "max_length", "data_path", "freeze_embeddings")
    progress["run_args"] = {k: progress["run_args"][k] for k in old_keys}
    progress_file.write_text(json.dumps(progress))
    args[args.index(tiny_models["teacher_base"])] = tiny_models["student_base"]
    kept = snapshot(out / "checkpoints"), snapshot(out / "teacher")
    result = run_script("trainer_teacher.py", *args, "--resume_from_checkpoint", "latest")
    assert_clean_failure(result, "cannot load the checkpoint", "step-20", "size mismatch", "another model")
    assert (snapshot(out / "checkpoints"), snapshot(out / "teacher")) == kept


# In-process checks of the structural validation, on the files of a real checkpoint.
STATE_FILES = ["model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"]


@pytest.mark.parametrize("name", STATE_FILES)
def test_each_kind_of_checkpoint_file_is_checked_whole(teacher_run, name, tmp_path):
    folder = tmp_path / "step-20"
    shutil.copytree(steps(teacher_run[0]) / "step-20", folder)
    path = folder / name
    assert file_problem(path) is None and checkpoint_problem(folder) is None
    whole = path.read_bytes()
    for size in (0, 3, 8, 100, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:size])
        problem = file_problem(path)
        assert problem and problem.startswith(name) and ("truncated" in problem or "empty" in problem), (size, problem)
        assert checkpoint_problem(folder) == problem
    # A zip reader finds its directory past trailing bytes; a safetensors file's size is exact.
    path.write_bytes(whole + b"\0" * 8)
    assert (file_problem(path) is not None) == name.endswith(".safetensors")
    path.unlink()
    assert checkpoint_problem(folder) == f"{name} is missing"


def test_safetensors_size_is_read_from_its_header(teacher_run):
    path = steps(teacher_run[0]) / "step-20" / "model.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    end = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    assert path.stat().st_size == 8 + header_len + end  # the rule file_problem applies


def test_progress_and_sums_are_checked(teacher_run, tmp_path):
    folder = tmp_path / "step-20"
    shutil.copytree(steps(teacher_run[0]) / "step-20", folder)
    progress = json.loads((folder / "progress.json").read_text())
    (folder / "progress.json").write_text(json.dumps({k: v for k, v in progress.items() if k != "global_step"}))
    assert "progress.json is incomplete" in checkpoint_problem(folder)
    (folder / "progress.json").write_text(json.dumps(progress))
    (folder / "sums-0.json").unlink()
    assert checkpoint_problem(folder) == "sums-0.json is missing"


def test_a_checkpoint_records_every_setting_that_changes_the_result(teacher_run):
    recorded = json.loads((steps(teacher_run[0]) / "step-5" / "progress.json").read_text())["run_args"]
    assert {"model_name_or_path", "warmup_ratio", "weight_decay", "max_grad_norm", "label_names", "head", "on_bad_rows",
            "metric_for_best_model", "validation_split", "mixed_precision", "num_processes"} <= set(recorded)
    assert not {"output_dir", "resume_from_checkpoint", "checkpointing_steps", "save_total_limit", "report_to",
                "eval_batch_size"} & set(recorded)
    assert recorded["mixed_precision"] in ("no", "bf16", "fp16")  # as resolved, never "auto"


def test_the_resume_check_names_every_difference(tmp_path, monkeypatch):
    settings = {"alpha": 0.5, "temperature": 2.0, "layer_map": [2, 4], "label_names": None, "data_path": "./data",
                "output_dir": "a", "mixed_precision": "auto", "stage": "both"}
    before = {"run_args": run_args(settings, "bf16", 1)}
    (tmp_path / "data").mkdir()
    now = {**settings, "alpha": 0.9, "layer_map": [1, 2], "label_names": ["neg", "pos"], "output_dir": "b",
           "mixed_precision": "bf16", "data_path": str(tmp_path / "data")}
    with pytest.raises(UserError) as refused:
        check_same_run(before, run_args(now, "no", 2), Path("step-5"))
    message = str(refused.value)
    for difference in ("--alpha 0.5 then, 0.9 now", "--layer_map 2,4 then, 1,2 now", "--label_names unset then, "
                       "neg,pos now", "mixed precision bf16 then, no now", "--num_processes 1 then, 2 now",
                       "--data_path ./data then"):
        assert difference in message, message
    assert "output_dir" not in message and "temperature" not in message and "stage" not in message
    # Only what the checkpoint recorded is compared; the same folder spelled otherwise is the same.
    check_same_run({"run_args": {"seed": 42}}, run_args({**now, "seed": 42}, "no", 2), Path("step-5"))
    monkeypatch.chdir(tmp_path)
    check_same_run({"run_args": {"data_path": "./data"}}, run_args(now, "no", 1), Path("step-5"))


def test_a_resumption_with_another_seed_or_sample_size_is_refused(tmp_path):
    """The rows drawn follow --seed and --max_train_samples, so a checkpoint of one cannot continue as
    the other."""
    settings = {**TrainConfig(max_train_samples=64, seed=5).to_flags(), **DataConfig().to_flags()}
    recorded = {"run_args": run_args(settings, "no", 1)}
    check_same_run(recorded, run_args(settings, "no", 1), tmp_path)
    for change in ({"seed": 6}, {"max_train_samples": 65}):
        with pytest.raises(UserError, match=f"--{next(iter(change))} "):
            check_same_run(recorded, run_args({**settings, **change}, "no", 1), tmp_path)


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


@pytest.mark.parametrize("free, said", [
    (4096, "no space left on the device to write {step}; the earlier checkpoints and the best model so far are "
           "kept. Free some space"),
    (10 << 30, "cannot write {step} ([enforce fail at inline_container.cc:672] . unexpected pos 9792 vs 9684); the "
               "earlier checkpoints"),
], ids=["full-disk", "other-failure"])
def test_a_full_disk_in_pytorchs_own_writer_is_one_line_and_keeps_the_model(sst2_slice, trained_teacher, tiny_models,
                                                                           tmp_path, monkeypatch, free, said):
    """On a full disk torch.save (a checkpoint's optimizer, scheduler and random states) fails with an error
    of its own that names no errno; with the disk (nearly) full, it is a full disk, said in one line, and
    otherwise a failed write named in one line. The model already there and the earlier checkpoints stay
    as they were, and no partial checkpoint is left."""
    import torch

    import kd_bert.safety.checkpoints

    save = torch.save

    def fails(obj, f, *args, **kwargs):  # what torch.save raises when a write comes up short
        if "step-2" in str(f):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9792 vs 9684")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fails)
    monkeypatch.setattr(kd_bert.safety.checkpoints, "free_bytes", lambda path: free,  # the disk as the write left it
                        raising=False)
    out = tmp_path / "out"
    shutil.copytree(trained_teacher, out / "teacher")
    before = snapshot(out / "teacher")
    with pytest.raises(UserError) as error:
        quick_teacher(sst2_slice, tiny_models, out, checkpointing_steps="1")
    checkpoints = out / "checkpoints" / "teacher"
    assert one_line(str(error.value)).startswith(said.format(step=checkpoints / "step-2")), error.value
    assert [p.name for p in checkpoints.iterdir()] == ["step-1"]
    assert snapshot(out / "teacher") == before
