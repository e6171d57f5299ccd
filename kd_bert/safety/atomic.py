"""Writing files and folders so that a reader, or a run that crashes halfway, never sees half of one.

A write that fails (a full disk, a folder where the file belongs, no permission) is one UserError that
names what was being written and says what was kept, and leaves no temporary file or folder behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from ..errors import UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# How a full disk reads when a library that does not raise OSError (safetensors writes from Rust) reports it.
DISK_FULL_TEXT = ("No space left on device", "StorageFull", "Disk quota exceeded")
# PyTorch's file writer (torch.save: Accelerate's optimizer, scheduler and random states) reports a failed
# write as its own RuntimeError, with neither an errno nor a word of space: "[enforce fail at
# inline_container.cc:672] . unexpected pos 9792 vs 9684". Such a failure on a disk with less than
# NEARLY_FULL bytes left, measured before the partial files are removed, is a full disk.
TORCH_WRITER_TEXT = "inline_container"
NEARLY_FULL = 1 << 20


class WriteError(UserError):
    """A file or folder could not be written; `cause` is the error the system gave."""

    def __init__(self, message: str, cause: BaseException):
        super().__init__(message)
        self.cause = cause


def is_write_failure(exc: BaseException) -> bool:
    """Whether exc is the system refusing a write (rather than a bug, or a signal stopping the run)."""
    return isinstance(exc, (OSError, WriteError)) or any(text in str(exc) for text in (*DISK_FULL_TEXT,
                                                                                       TORCH_WRITER_TEXT))


def free_bytes(path: Path) -> int | None:
    """Bytes this user may still write on the filesystem that holds path (or its nearest existing parent)."""
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            try:
                stat = os.statvfs(folder)
            except (OSError, AttributeError):  # statvfs: POSIX only
                return None
            return stat.f_bavail * stat.f_frsize
    return None


def write_error(exc: BaseException, target: Path, kept: str, free: int | None = None) -> WriteError:
    """The one-line error for a write to target that failed with exc; `kept` says what stays as it was;
    `free`, the bytes left on its disk when the write failed (see TORCH_WRITER_TEXT)."""
    cause = exc.cause if isinstance(exc, WriteError) else exc
    text = str(cause)
    if ((isinstance(cause, OSError) and cause.errno in DISK_FULL) or any(t in text for t in DISK_FULL_TEXT)
            or (TORCH_WRITER_TEXT in text and free is not None and free < NEARLY_FULL)):
        return WriteError(f"no space left on the device to write {target}; {kept}. Free some space, or write to "
                          f"another disk", cause)
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else " ".join(text.split()) or \
        type(cause).__name__
    reason = reason if len(reason) <= 100 else reason[:100] + "..."
    return WriteError(f"cannot write {target} ({reason}); {kept}", cause)


def save_folder_atomically(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a sibling folder, then rename it into place.

    A crash while writing leaves the previous folder where it was; the only window without one at
    out_dir is between two renames, and then the previous one is still whole at `.NAME.old-PID`.
    A symlink at out_dir keeps pointing where it did: the folder it points to is the one replaced.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    kept = f"{out_dir} is unchanged" if out_dir.exists() else "nothing was written"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        write(partial)
    except BaseException as exc:
        free = free_bytes(partial)  # before the partial folder gives its space back
        shutil.rmtree(partial, ignore_errors=True)
        if is_write_failure(exc):
            raise write_error(exc, out_dir, kept, free) from exc
        raise
    moved = False
    try:
        if out_dir.exists():
            os.replace(out_dir, old)
            moved = True
        os.replace(partial, out_dir)
    except OSError as exc:
        if moved:
            os.replace(old, out_dir)
        shutil.rmtree(partial, ignore_errors=True)
        raise write_error(exc, out_dir, kept) from exc
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def write_atomically(path: str | Path, content: bytes) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    write_files_atomically({Path(path): content})


def write_files_atomically(contents: dict[Path, bytes]) -> None:
    """Write several files as one: each to a temporary beside it, and only once all are written, each
    renamed into place, in the order given (so put last the file a reader looks for). A failure while
    writing (a full disk) leaves none of them new and no temporary behind; a failed rename takes back
    the files that rename had already put in place where none was before."""
    temporaries = {Path(path): Path(path).with_name(f".{Path(path).name}.tmp-{os.getpid()}") for path in contents}
    existed = {path: path.exists() for path in temporaries}
    kept = ("nothing was written" if not any(existed.values())
            else f"{_are(path for path, was in existed.items() if was)} unchanged")
    placed: list[Path] = []
    target = next(iter(temporaries))
    try:
        for target, tmp in temporaries.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(contents[target])
        for target, tmp in temporaries.items():
            os.replace(tmp, target)
            placed.append(target)
    except BaseException as exc:  # a full disk, or a signal that stops the run: no stray temporary left behind
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        for path in placed:
            if not existed[path]:
                path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(exc, target, kept) from exc
        raise


def _are(paths) -> str:
    """Paths for a message: "a is" or "a and b are"."""
    names = [str(p) for p in paths]
    return f"{names[0]} is" if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} are"


def write_text_atomically(path: str | Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


def write_json(path: str | Path, content) -> None:
    write_text_atomically(path, json.dumps(content, indent=2, default=str) + "\n")
