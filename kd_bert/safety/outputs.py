"""What a training run writes, checked before anything loads, and the output folder claimed for the
run: no finished model is replaced unless asked (guard_output), and one run writes a folder at a
time (lock.output_lock)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ..config import TrainConfig, trackers
from ..errors import UserError
from ..log import is_main_process
from ..safety.checkpoints import (
    checkpoint_root,
)
from ..safety.lock import output_lock
from ..safety.preflight import check_file, check_folder, check_not_read


def check_outputs(train: TrainConfig, roles: list[str], files: dict[str, Path] | None = None,
                  reads: dict[str, str | None] | None = None) -> None:
    """Before anything is loaded: every folder the run writes (its output folder, the model folder of
    each role, their checkpoints, the trackers' logs) and every file (`files`, each named for the
    message) can be written (see preflight), and none of them is, holds or lies inside what the run
    reads (`reads`: the models and data by flag, see preflight.check_not_read)."""
    out = Path(train.output_dir)
    reads = reads or {}
    check_folder(out, f"--output_dir {train.output_dir}")
    for role in roles:
        check_folder(out / role, f"the model folder {out / role}")
        check_not_read(out / role, f"the model folder {out / role}", reads, whole=True)
        if train.checkpointing_steps:
            check_folder(checkpoint_root(out, role), f"the checkpoint folder {checkpoint_root(out, role)}")
            check_not_read(checkpoint_root(out, role), f"the checkpoint folder {checkpoint_root(out, role)}", reads,
                           whole=True)
    if trackers(train.report_to):
        check_folder(out / "runs", f"the tracking folder {out / 'runs'}")
        check_not_read(out / "runs", f"the tracking folder {out / 'runs'}", reads)
    for what, file in (files or {}).items():
        check_file(file, what)
        check_not_read(file, what, reads)


@contextmanager
def claim_output(train: TrainConfig, roles: list[str]):
    """The output folder held by this run while the block runs (run_lock), once no finished model is
    in the way (guard_output). One process of a distributed run holds it for all."""
    with output_lock(train.output_dir, enabled=is_main_process()):
        guard_output(train, roles)
        yield


def guard_output(train: TrainConfig, roles: list[str]) -> None:
    """Refuse to replace a finished model unless asked to (--overwrite_output_dir) or continuing its
    run (--resume_from_checkpoint); checked before anything is loaded."""
    if train.overwrite_output_dir or train.resume_from_checkpoint:
        return
    for role in roles:
        folder = Path(train.output_dir) / role
        if folder.is_dir() and any(folder.iterdir()):
            raise UserError(f"{folder} already holds a model; pass --overwrite_output_dir to replace it, "
                            f"--resume_from_checkpoint to continue the run that wrote it, or another --output_dir")
