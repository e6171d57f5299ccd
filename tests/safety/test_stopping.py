"""Stopping a run: SIGTERM and SIGINT stop training at a step boundary with a checkpoint there, print
the command that resumes it, and exit 143 or 130; the resumed run ends exactly where an
uninterrupted one does. Outside the loop a signal stops at once, with one line."""

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import REPO, load_script, outcome, resumable_teacher_args, weights

from kd_bert import cli
from kd_bert.safety import stopping

STOPPED = re.compile(r"stopped by (SIG\w+) at epoch (\d+), step (\d+) of 40; checkpoint written to (.*step-(\d+))$",
                     re.M)


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own SIGINT handler for each test, as at a terminal. A suite launched in the background
    (`nohup`, `&` in a script) starts with SIGINT ignored, which Python then keeps."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_default() -> None:
    """In the child, before exec: SIGINT as at a terminal, whatever the suite was launched with."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_when(command: list[str], ready, signum: int, checkpoints: Path) -> dict:
    """Run `command`, send it `signum` once ready() holds, and return how it ended and the checkpoints
    it left."""
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
                            preexec_fn=sigint_default)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    proc.send_signal(signum)
    stderr = proc.communicate(timeout=300)[1]
    return {"returncode": proc.returncode, "stderr": stderr,
            "checkpoints": sorted(p.name for p in checkpoints.glob("step-*"))}


def steps_done(checkpoints: Path) -> list[int]:
    return [int(p.name.removeprefix("step-")) for p in checkpoints.glob("step-*")]


def resume_command(stderr: str) -> list[str]:
    found = re.search(r"^to resume: (.*)$", stderr, re.M)
    assert found, stderr
    return shlex.split(found[1])


@pytest.fixture(scope="module")
def stopped_twice(tmp_path_factory, sst2_slice, tiny_models) -> dict:
    """One run stopped three times over: by SIGTERM just after its first checkpoint (step 7), resumed
    with the command it printed and stopped by SIGINT in its second epoch, then resumed again to the end."""
    out = tmp_path_factory.mktemp("stopped")
    checkpoints = out / "checkpoints" / "teacher"
    first = [sys.executable, str(REPO / "trainer_teacher.py"), *map(str, resumable_teacher_args(sst2_slice,
                                                                                                tiny_models, out))]
    term = stop_when(first, lambda: steps_done(checkpoints), signal.SIGTERM, checkpoints)
    # after an epoch boundary, so the resumed run has a history and a best model to carry on
    interrupt = stop_when(resume_command(term["stderr"]), lambda: any(n >= 49 for n in steps_done(checkpoints)),
                          signal.SIGINT, checkpoints)
    command = resume_command(interrupt["stderr"])
    last = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return {"first": first, "SIGTERM": term, "SIGINT": interrupt, "last": last, "last_command": command,
            "model": out / "teacher"}


@pytest.mark.slow  # three script processes stopped by real signals, about 20 s; CI runs it with -m slow
@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_stops_at_a_step_with_a_checkpoint_there(stopped_twice, name, code):
    run = stopped_twice[name]
    assert run["returncode"] == code, run["stderr"]
    assert "Traceback" not in run["stderr"], run["stderr"]
    where = STOPPED.search(run["stderr"])
    assert where and where[1] == name, run["stderr"]
    epoch, step, global_step = int(where[2]), int(where[3]), int(where[5])
    assert global_step == 40 * (epoch - 1) + step
    # the newest checkpoint is the one at the step where it stopped, past the last regular one
    assert run["checkpoints"][-1] == f"step-{global_step}" == Path(where[4]).name
    assert max(int(n.removeprefix("step-")) for n in run["checkpoints"]) == global_step
    if name == "SIGINT":
        assert epoch >= 2 and "Ctrl-C again to stop at once" in run["stderr"]


@pytest.mark.slow  # the stopped runs above, and an uninterrupted one; CI runs it with -m slow
def test_the_printed_command_resumes_to_the_uninterrupted_result(stopped_twice, uninterrupted_teacher):
    last = stopped_twice["last"]
    assert last.returncode == 0, last.stderr
    # the user's flags, with the --resume_from_checkpoint latest of the run it resumes given once
    assert stopped_twice["last_command"][2:] == [*stopped_twice["first"][2:], "--resume_from_checkpoint", "latest"]
    assert re.search(r"resumed from .*step-\d+: epoch 2, \d+ of its batches done", last.stdout), last.stdout
    assert outcome(stopped_twice["model"]) == outcome(uninterrupted_teacher)  # exactly, on CPU
    assert weights(stopped_twice["model"]) == weights(uninterrupted_teacher)


def test_without_checkpointing_sigterm_says_nothing_was_checkpointed(sst2_slice, tiny_models, tmp_path, capsys,
                                                                    monkeypatch):
    """In this process, for speed: the script's own main through cli.run, a SIGTERM sent from inside
    the loop at its 45th batch (epoch 2), after the first epoch's model was saved."""
    from kd_bert.train import loop as training

    batches = 0
    counted = training.padding_stats

    def padding_stats(batch):
        nonlocal batches
        batches += 1
        if batches == 45:
            os.kill(os.getpid(), signal.SIGTERM)
        return counted(batch)

    monkeypatch.setattr(training, "padding_stats", padding_stats)
    for name in ("TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS"):  # cli.run sets them for the process
        monkeypatch.setenv(name, os.environ.get(name, "false" if name == "TOKENIZERS_PARALLELISM" else "1"))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    script = load_script("trainer_teacher.py")
    out = tmp_path / "out"
    argv = [*map(str, resumable_teacher_args(sst2_slice, tiny_models, out))][:-4]  # no --checkpointing_steps
    assert "--checkpointing_steps" not in argv
    with pytest.raises(SystemExit) as stop:
        cli.run(script.main, script.parse_args(), argv)
    assert stop.value.code == 143
    err = capsys.readouterr().err
    assert "stopped by SIGTERM at epoch 2, step 5 of 40; no checkpoint was written (checkpointing is off), " \
           f"the best model so far stays in {out / 'teacher'}" in err, err
    assert "--checkpointing_steps" in err and "to resume:" not in err
    assert (out / "teacher" / "model.safetensors").is_file() and not (out / "checkpoints").exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # the process's own again


def test_outside_the_loop_sigterm_stops_at_once_with_one_line(capsys):
    before = signal.getsignal(signal.SIGTERM)

    def main(flags):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # a signal handler raises here, at once
        raise AssertionError("SIGTERM did not stop the run")

    parser = load_script("evaluate.py").parse_args()
    with pytest.raises(SystemExit) as stop:
        cli.run(main, parser, [])
    assert stop.value.code == 143
    assert capsys.readouterr().err == "stopped by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_sigint_stops_at_once():
    with pytest.raises(KeyboardInterrupt) as stop:
        with stopping.deferred(announce=False) as request:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs in this thread, between two bytecodes
            assert request.signum == signal.SIGINT  # recorded, not raised: the loop stops at its step boundary
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    assert type(stop.value) is KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_after_the_loops_last_look_stops_when_it_ends():
    with pytest.raises(stopping.Stopped) as stop:
        with stopping.deferred(announce=False):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert stop.value.signum == signal.SIGINT and stop.value.exit_code == 130 and not stop.value.in_loop


def test_a_python_users_handlers_are_left_alone():
    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with stopping.deferred(announce=False):
            assert signal.getsignal(signal.SIGTERM) is own  # no handled(): SIGTERM stays the user's
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # Ctrl-C is deferred
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_changed():
    seen = []

    def job():
        with stopping.handled(), stopping.deferred() as request:
            seen.append((signal.getsignal(signal.SIGTERM), request.signum))

    thread = threading.Thread(target=job)
    thread.start()
    thread.join()
    assert seen == [(signal.getsignal(signal.SIGTERM), None)]
