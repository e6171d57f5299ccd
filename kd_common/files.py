"""Writing files and folders so that a reader, or a run that crashes halfway, never sees half of one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable


def save_folder_atomically(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a sibling folder, then rename it into place.

    A crash while writing leaves the previous folder where it was; the only window without one at
    out_dir is between two renames, and then the previous one is still whole at `.NAME.old-PID`.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        write(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(partial, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def write_atomically(path: str | Path, content: bytes) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    except BaseException:  # a full disk, or a signal that stops the run: no stray temporary left behind
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


def write_json(path: str | Path, content) -> None:
    write_text_atomically(path, json.dumps(content, indent=2, default=str) + "\n")
