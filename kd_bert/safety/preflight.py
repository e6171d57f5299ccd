"""Checking, before anything is loaded, that every path a run will write can be written.

A run that trains for an hour and then cannot save its model has lost that hour. Each folder or
file the run will write is checked first: it is not a file where a folder is needed (or the
reverse), and the nearest folder that already exists takes a new file. The check writes a probe
file and removes it at once, so a failed check leaves nothing behind; it costs well under a
millisecond per path.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from ..errors import UserError

WRITE_FIX = "give a path you can write to, or fix the folder's permissions"


def check_folder(path: str | Path, what: str, fix: str = WRITE_FIX) -> None:
    """`what` (e.g. "--output_dir ./models") is, or can become, a folder this process can write in;
    `fix` ends the message when it cannot be written."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} is a file, and a folder is needed there; give another path or move the file")
    _check_writable(folder, what, fix)


def check_file(path: str | Path, what: str, example: str = "metrics.json", fix: str = WRITE_FIX) -> None:
    """`what` is, or can become, a file this process can write; `example` names a file for the
    message when a folder is in its place."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise UserError(f"{what} is a folder, and a file is needed there; give a file path such as "
                        f"{file / example}")
    _check_writable(file.parent, what, fix)


def _check_writable(folder: Path, what: str, fix: str) -> None:
    existing = folder
    while not existing.exists():  # the folders still to be made are made in the nearest existing one
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what}: {existing} is a file, so no folder can be made under it; give another path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".kd-bert-probe-", dir=existing)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {existing} ({exc.strerror or type(exc).__name__}); {fix}") from None
    os.close(handle)
    os.unlink(probe)


def check_not_read(output: str | Path, what: str, reads: dict[str, str | Path | None], whole: bool = False,
                   allow_inside: tuple[str, ...] = ()) -> None:
    """Refuse an output that is, or lies inside, something the run reads: `reads` maps how each input is
    named in messages (e.g. "--teacher_model ./models/teacher") to its path; hub ids and paths that do
    not exist are skipped. `whole`: the output is replaced as a whole (a model folder), so it must not
    hold anything the run reads either. `allow_inside`: the inputs (by message name) the output may lie
    inside, where it replaces nothing they hold. Paths are compared resolved: a symlink or `..` is no way
    around it."""
    out = Path(output).expanduser().resolve()
    for name, source in reads.items():
        if not source or not Path(source).expanduser().exists():
            continue
        read = Path(source).expanduser().resolve()
        if out == read:
            raise UserError(f"{what} is {name}, which this run reads; write to another path")
        if read in out.parents and name not in allow_inside:
            raise UserError(f"{what} lies inside {name}, which this run reads; write it outside that folder")
        if whole and out in read.parents:
            raise UserError(f"{what} holds {name}, which this run reads, and is replaced as a whole when the run "
                            f"saves; give another path, or move the input out of it")


def reads_of(**paths: str | None) -> dict[str, str | None]:
    """What a run reads, named by flag for messages: reads_of(data_path="d") -> {"--data_path d": "d"}."""
    return {f"--{flag} {path}": path for flag, path in paths.items() if path}


WORK_MARK = ".kd-bert-work"
_HELD: dict[Path, object] = {}  # the marks of the work folders this process holds, locked until it exits


def claim_work_dir(path: str | Path, owner: str, what: str = "--work_dir") -> Path:
    """A folder a benchmark or script fills and replaces at will: a new or empty folder, or one it made
    before (it holds WORK_MARK naming `owner`). Anything else may hold a user's models or data, and is
    refused before anything is written. The mark stays locked while this process runs, so a second run in
    the same folder is refused rather than deleting the first's files. Returns the resolved folder, made and
    marked."""
    folder = Path(path).expanduser().resolve()
    check_folder(folder, f"{what} {path}")
    mark = folder / WORK_MARK
    if folder.is_dir() and any(folder.iterdir()):
        made_by = mark.read_text(encoding="utf-8").strip() if mark.is_file() else None
        if made_by != owner:
            by = f"by {made_by}" if made_by else "by something else"
            raise UserError(f"{what} {path} holds files written {by}, which this run would replace; give a new "
                            f"or empty folder")
    if folder in _HELD:  # claimed by this process already
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(mark, "a+", encoding="utf-8")  # noqa: SIM115 - held open: the lock lasts as long as the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(f"{what} {path} is in use by another run of {owner}; wait for it to end, or give another "
                        f"folder") from None
    handle.truncate(0)
    handle.write(owner + "\n")
    handle.flush()
    _HELD[folder] = handle
    return folder
