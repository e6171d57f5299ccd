"""One run per output folder.

Two runs writing the same folder would each replace the other's checkpoints and models, and both
would report success. A run therefore holds a lock file in its output folder while it runs: it
names the run (pid, host, start time, command) and is removed at exit. The lock itself is an
flock on that file, which the operating system releases when the process ends however it ends,
so a lock file left by a killed run is recognized as stale and taken over. Where flock is not
available (some network file systems, Windows), a lock file whose process is gone from this host
counts as stale instead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

LOCK_FILE = ".kd-bert.lock"
WAIT_POLL_S = 0.2  # how often a process waiting for its turn tries the lock again

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None


@contextmanager
def output_lock(output_dir: str | Path, enabled: bool = True, lock_file: str = LOCK_FILE,
                waiting: str | None = None):
    """Hold the lock of output_dir while the block runs; refuse at once if another live run holds it.
    With `waiting` (what a holder is doing, for the message), wait for it to end instead: work that
    takes turns. A folder made only to hold the lock is removed again if the run leaves it empty."""
    if not enabled:  # the non-main processes of a distributed run: the main one holds it for all
        yield
        return
    folder = Path(output_dir).expanduser()
    made = _make_folders(folder)
    try:
        handle = _acquire(folder / lock_file, waiting)
    except BaseException:
        _remove_empty(made)
        raise
    try:
        yield
    finally:
        _release(folder / lock_file, handle)
        _remove_empty(made)


def describe(holder: dict | None) -> str:
    if not holder:
        return "its details are not written yet"
    command = f": {holder['command']}" if holder.get("command") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}{command}"


def _acquire(path: Path, waiting: str | None = None) -> int:
    """The open lock file's descriptor, flock held and this run's details written in it. Held by a
    live run: refused, or with `waiting`, waited for (said once, naming the holder)."""
    if path.is_dir():
        raise UserError(f"{path} is a folder, where the lock file of the runs writing to {path.parent} belongs; "
                        f"move or remove it (this project never makes a folder there)")
    replaced, said = 0, False
    while replaced < 5:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            held = _lock(handle, path)
        except BaseException:
            os.close(handle)
            raise
        if not held:
            holder = read_holder(path)
            os.close(handle)
            if waiting is None:
                raise UserError(f"another run is writing to {path.parent} ({describe(holder)}); wait for it to end, "
                                f"or give this run another --output_dir")
            if not said:
                log.info(f"waiting for {waiting} to end ({describe(holder)})")
                said = True
            time.sleep(WAIT_POLL_S)
            continue
        # The run that held it may have removed the file between our open and our lock: then this lock is
        # on a file no one else will see; open the path again.
        try:
            same = os.stat(path).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(handle)
            replaced += 1
            continue
        previous = read_holder(path)
        if previous:
            log.info(f"note: took over the lock of a run that is no longer running ({describe(previous)})")
        os.ftruncate(handle, 0)
        os.write(handle, (json.dumps(this_run()) + "\n").encode("utf-8"))
        return handle
    raise UserError(f"cannot take the lock {path}: it keeps being replaced; is another run starting in "
                    f"{path.parent}?")


def _lock(handle: int, path: Path) -> bool:
    """True when this process now holds the lock; False when a live run does."""
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # a file system without flock: fall back to the recorded pid
            pass
    holder = read_holder(path)
    return not holder or not holder_alive(holder)


def holder_alive(holder: dict) -> bool:
    """Whether the process a lock file names may still run: only a pid on this host can be checked."""
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell from here; the message names the host and the file to delete
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    return True


def _release(path: Path, handle: int) -> None:
    try:
        if os.stat(path).st_ino == os.fstat(handle).st_ino:
            os.unlink(path)  # before the lock is released, so no one sees our details as a stale lock
    except OSError:
        pass
    os.close(handle)  # releases the flock


def read_holder(path: Path) -> dict | None:
    """The process a lock file names (pid, host, start, command), or None if it is gone or unreadable."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def this_run() -> dict:
    """This process, as a lock file names its holder."""
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def _make_folders(folder: Path) -> list[Path]:
    """Make folder and its missing parents; the ones made, innermost first."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()  # only if empty: anything the run wrote stays
        except OSError:
            return
