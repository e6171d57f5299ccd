"""Resumable training state.

A checkpoint is Accelerate's save_state (model, optimizer, scheduler, grad scaler and every
process's RNG states, plus a projection module the objective trains) and the loop's own position
(progress.json: epoch, batches done in it, the running sums of that epoch, the history so far and
the best epoch). It is written to `.step-N.partial` and renamed to `step-N` only when complete, so a
run killed while saving leaves the previous checkpoints as they were and `latest` never picks a
half-written one. Old checkpoints are removed beyond --save_total_limit.

A checkpoint can still be damaged afterwards (a full disk, a copy cut short): `latest` skips one
whose files are not whole (checkpoint_problem) for the newest usable one, and a resumption must match
the settings of the run that wrote it (check_same_run), both before any model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from ..errors import UserError, is_cuda_out_of_memory
from .atomic import free_bytes, is_write_failure, write_error
from .file_checks import CHECKED_SUFFIXES, file_problem

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
PREFIX = "step-"
PROGRESS_KEYS = ("epoch", "step", "global_step", "history", "best")
MODEL_FILES = ("model.safetensors", "pytorch_model.bin")  # Accelerate's, with and without safe serialization
STATE_FILES = ("optimizer.bin", "scheduler.bin")  # the loop always prepares one optimizer and one scheduler
SCALER_FILE = "scaler.pt"  # the fp16 grad scaler's
# Settings a resumed run may change, because they cannot change what it trains: where and how often
# it writes, how it logs, the evaluation's batch size, where teacher logits are cached, and the extra
# evaluations of --eval_steps (run with the random state forked, so training goes on the same).
# --compare_no_kd adds a second run with checkpoints of its own. --mixed_precision is compared as
# resolved: `auto` may pick another precision on another machine. Every other setting is compared.
MAY_CHANGE = frozenset({"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "checkpointing_steps",
                        "save_total_limit", "eval_batch_size", "cache_dir", "report_to", "eval_steps",
                        "compare_no_kd", "mixed_precision"})
# Settings naming a file or folder: `./models/teacher` and `models/teacher` are the same one.
PATH_SETTINGS = frozenset({"data_path", "teacher_model", "student_model", "model_name_or_path", "transfer_data",
                           "student_tokenizer"})
RESOLVED_PRECISION, PROCESSES = "mixed_precision", "num_processes"


def checkpoint_root(output_dir: str | Path, role: str) -> Path:
    return Path(output_dir) / "checkpoints" / role


def run_args(settings: dict, precision_mode: str, num_processes: int) -> dict:
    """What a resumption must match: every setting that can change the result, the precision as
    resolved, and the number of processes (which shard the batches)."""
    args = {k: v for k, v in settings.items() if k not in MAY_CHANGE}
    return {**args, RESOLVED_PRECISION: precision_mode, PROCESSES: num_processes}


def list_checkpoints(root: Path) -> list[Path]:
    """The step-N folders under root, oldest first. A folder is renamed to step-N only once complete
    (see save_checkpoint); checkpoint_problem says whether it has been damaged since."""
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX):]))


def _read_json(path: Path) -> tuple[object, str | None]:
    """A JSON file's content, or what is wrong with it."""
    if not path.is_file():
        return None, f"{path.name} is missing"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{path.name} is unreadable ({exc})"


def checkpoint_problem(folder: Path) -> str | None:
    """What makes the checkpoint in folder unusable, or None: every file a resumption reads must be
    there and whole. Checked from the files' sizes and headers only (see file_checks), so that it
    costs next to nothing on a checkpoint of gigabytes."""
    progress, problem = _read_json(folder / PROGRESS_FILE)
    if problem:
        return problem
    if not isinstance(progress, dict) or any(key not in progress for key in PROGRESS_KEYS):
        return f"{PROGRESS_FILE} is incomplete (it needs {', '.join(PROGRESS_KEYS)})"
    before = progress.get("run_args") if isinstance(progress.get("run_args"), dict) else {}
    processes = before.get(PROCESSES) if isinstance(before.get(PROCESSES), int) else 1  # 1 before it was recorded
    model = next((name for name in MODEL_FILES if (folder / name).exists()), MODEL_FILES[0])
    required = [model, *STATE_FILES, *(f"random_states_{i}.pkl" for i in range(processes))]
    if before.get(RESOLVED_PRECISION) == "fp16":
        required.append(SCALER_FILE)
    # Accelerate goes on without a process's random states it cannot read: the resumed run would
    # silently draw other dropout masks. So those are required, and every other state file is checked.
    others = sorted(p.name for p in folder.iterdir() if p.suffix in CHECKED_SUFFIXES and p.name not in required)
    for name in [*required, *others]:
        problem = file_problem(folder / name)
        if problem:
            return problem
    sums = {f"sums-{i}.json" for i in range(processes)} | {p.name for p in folder.glob("sums-*.json")}
    for name in sorted(sums):
        _, problem = _read_json(folder / name)
        if problem:
            return problem
    for i in range(processes):
        problem = random_state_problem(folder / f"random_states_{i}.pkl")
        if problem:
            return problem
    return None


def random_state_problem(path: Path) -> str | None:
    """What keeps a process's random states from being restored, or None. Accelerate loads them with
    weights_only and, when that fails, goes on without them: the resumed run would then draw other
    dropout masks than the uninterrupted one, silently. So they are loaded here the same way, and set
    on throwaway generators, before any model is loaded. The file is small (a few KB)."""
    import random

    import numpy as np
    import torch
    from accelerate.utils import load

    try:
        states = load(path, map_location="cpu")
        random.Random().setstate(states["random_state"])
        np.random.RandomState().set_state(states["numpy_random_seed"])
        torch.Generator().set_state(states["torch_manual_seed"])
    except Exception as exc:
        return f"{path.name} cannot be restored ({_first_line(exc, 120)}), so the run would not go on as it would have"
    return None


def _usable(root: Path) -> list[Path]:
    """The checkpoints under root that pass checkpoint_problem, newest first."""
    return [p for p in reversed(list_checkpoints(root)) if checkpoint_problem(p) is None]


def resolve_resume(value: str | None, root: Path) -> Path | None:
    """--resume_from_checkpoint: None, 'latest' (the newest usable checkpoint: damaged ones are
    skipped, each with a warning) or a folder, which must be usable."""
    if not value:
        return None
    if value == "latest":
        return _latest(root)
    path = Path(value)
    if not path.is_dir() or not any((path / name).exists() for name in (PROGRESS_FILE, *MODEL_FILES)):
        raise UserError(f"--resume_from_checkpoint {value}: not a checkpoint folder (it has no {PROGRESS_FILE}); "
                        f"pass 'latest' or one of the step-N folders under {root}")
    problem = checkpoint_problem(path)
    if problem:
        usable = _usable(path.parent)
        others = f"the usable ones in {path.parent} are {', '.join(p.name for p in usable)}; resume from one of " \
                 f"them (or 'latest')" if usable else \
            f"there is no usable checkpoint in {path.parent}; run without --resume_from_checkpoint to start fresh"
        raise UserError(f"--resume_from_checkpoint {value}: the checkpoint is damaged ({problem}); {others}")
    return path


def _latest(root: Path) -> Path:
    found = list_checkpoints(root)
    if not found:
        raise UserError(f"--resume_from_checkpoint latest: there is no checkpoint in {root}; run without it to "
                        f"start fresh (and with --checkpointing_steps to write some)")
    damaged = []
    for path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            for bad, why in damaged:
                log.warning(f"skipping the damaged checkpoint {bad} ({why}); resuming from {path}")
            return path
        damaged.append((path, problem))
    details = "; ".join(f"{path.name}: {why}" for path, why in damaged)
    raise UserError(f"--resume_from_checkpoint latest: every checkpoint in {root} is damaged ({details}); "
                    f"run without --resume_from_checkpoint to start fresh")


def read_progress(path: Path) -> dict:
    return json.loads((path / PROGRESS_FILE).read_text(encoding="utf-8"))


def _normal(value):
    """A setting as progress.json holds it: lists for tuples, text for paths."""
    return json.loads(json.dumps(value, default=str))


def _same(key: str, then, now) -> bool:
    if _normal(then) == _normal(now):
        return True
    if key in PATH_SETTINGS and then and now:
        before, after = Path(str(then)), Path(str(now))
        return before.exists() and after.exists() and before.resolve() == after.resolve()
    return False


def _shown(value) -> str:
    if value is None:
        return "unset"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _difference(key: str, then, now) -> str:
    if key == PROCESSES:
        return f"accelerate launch --num_processes {then} then, {now} now"
    if key == RESOLVED_PRECISION:
        return f"mixed precision {then} then, {now} now (pass --mixed_precision {then})"
    return f"--{key} {_shown(then)} then, {_shown(now)} now"


def check_same_run(progress: dict, run_args: dict, path: Path) -> None:
    """Refuse to resume with any setting in run_args that differs from the run that wrote the
    checkpoint. A checkpoint written before a setting was recorded is not judged on it."""
    before = progress.get("run_args", {})
    changed = [k for k in run_args if k in before and not _same(k, before[k], run_args[k])]
    if changed:
        details = ", ".join(_difference(k, before[k], run_args[k]) for k in changed)
        raise UserError(f"cannot resume from {path}: {details}; resume with the flags of the run that wrote it, "
                        f"or start fresh without --resume_from_checkpoint")


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
    try:
        accelerator.save_state(str(partial))
        (partial / f"sums-{accelerator.process_index}.json").write_text(json.dumps(sums) + "\n", encoding="utf-8")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (partial / PROGRESS_FILE).write_text(json.dumps(progress, default=str) + "\n", encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(partial, target)
    except Exception as exc:  # a full disk: no half-written checkpoint stays to be mistaken for one
        free = free_bytes(partial)  # before the partial checkpoint gives its space back
        shutil.rmtree(partial, ignore_errors=True)
        if is_write_failure(exc):
            raise write_error(exc, target, "the earlier checkpoints and the best model so far are kept",
                              free) from exc
        raise
    if accelerator.is_main_process and total_limit:
        for old in list_checkpoints(root)[:-total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return target


def load_checkpoint(accelerator, path: Path) -> dict:
    """Restore model, optimizer, scheduler, scaler and RNG states; return the loop's progress, with
    this process's running sums under "sums"."""
    try:
        accelerator.load_state(str(path))
    except Exception as exc:  # whatever Accelerate, torch or safetensors raise, said in one line
        if is_cuda_out_of_memory(exc):
            raise  # the entry layer's own advice (a smaller batch) fits it
        raise UserError(f"cannot load the checkpoint {path}: {_first_line(exc)}; {_likely_cause(exc)}; resume with "
                        f"the flags of the run that wrote it, or start fresh without --resume_from_checkpoint") from exc
    progress = read_progress(path)
    sums = path / f"sums-{accelerator.process_index}.json"
    progress["sums"] = json.loads(sums.read_text(encoding="utf-8")) if sums.is_file() else None
    return progress


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _likely_cause(exc: BaseException) -> str:
    text = str(exc)
    if "size mismatch" in text or "Missing key" in text or "Unexpected key" in text:
        return "its model has other layers or sizes than this run's (another model, student or head)"
    if "parameter group" in text:
        return "its optimizer trained other parameters than this run's (another model or --freeze_embeddings)"
    return "it is damaged, or was written by another model or library version"
