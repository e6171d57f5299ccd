"""Resumable training state.

A checkpoint is Accelerate's save_state (model, optimizer, scheduler, grad scaler and every
process's RNG states, plus a projection module the objective trains) and the loop's own position
(progress.json: epoch, batches done in it, the running sums of that epoch, the history so far and
the best epoch). It is written to `.step-N.partial` and renamed to `step-N` only when complete, so a
run killed while saving leaves the previous checkpoints as they were and `latest` never picks a
half-written one. Old checkpoints are removed beyond --save_total_limit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .errors import UserError

PROGRESS_FILE = "progress.json"
PREFIX = "step-"
# Flags that must match between a run and its resumption: with others the batches would differ.
RESUME_KEYS = ("seed", "batch_size", "learning_rate", "num_train_epochs", "gradient_accumulation_steps",
               "max_train_samples", "group_by_length", "max_length", "data_path", "freeze_embeddings")


def checkpoint_root(output_dir: str | Path, role: str) -> Path:
    return Path(output_dir) / "checkpoints" / role


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / PROGRESS_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX):]))


def resolve_resume(value: str | None, root: Path) -> Path | None:
    """--resume_from_checkpoint: None, 'latest' (the newest complete checkpoint) or a folder."""
    if not value:
        return None
    if value == "latest":
        found = list_checkpoints(root)
        if not found:
            raise UserError(f"--resume_from_checkpoint latest: there is no checkpoint in {root}; run without it to "
                            f"start fresh (and with --checkpointing_steps to write some)")
        return found[-1]
    path = Path(value)
    if not (path / PROGRESS_FILE).is_file():
        raise UserError(f"--resume_from_checkpoint {value}: not a checkpoint folder (it has no {PROGRESS_FILE}); "
                        f"pass 'latest' or one of the step-N folders under {root}")
    return path


def check_same_run(progress: dict, run_args: dict, path: Path) -> None:
    before = progress.get("run_args", {})
    changed = [k for k in RESUME_KEYS if k in before and str(before[k]) != str(run_args.get(k))]
    if changed:
        details = ", ".join(f"--{k} {before[k]} then, {run_args.get(k)} now" for k in changed)
        raise UserError(f"cannot resume from {path}: {details}; resume with the flags of the run that wrote it")


def save_checkpoint(accelerator, root: Path, global_step: int, progress: dict, total_limit: int | None,
                    sums: dict | None) -> Path:
    """Every process calls this: each saves its own RNG state and running sums (its share of the
    epoch's loss and token counts); the main process writes the progress, renames and rotates."""
    target = root / f"{PREFIX}{global_step}"
    partial = root / f".{target.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    (partial / f"sums-{accelerator.process_index}.json").write_text(json.dumps(sums) + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / PROGRESS_FILE).write_text(json.dumps(progress, default=str) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
        if total_limit:
            for old in list_checkpoints(root)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return target


def load_checkpoint(accelerator, path: Path) -> dict:
    """Restore model, optimizer, scheduler, scaler and RNG states; return the loop's progress, with
    this process's running sums under "sums"."""
    accelerator.load_state(str(path))
    progress = json.loads((path / PROGRESS_FILE).read_text(encoding="utf-8"))
    sums = path / f"sums-{accelerator.process_index}.json"
    progress["sums"] = json.loads(sums.read_text(encoding="utf-8")) if sums.is_file() else None
    return progress
