"""The Accelerator a job runs under (device placement, autocast in the chosen precision, gradient
accumulation, the distributed set-up) and the trackers that log its training curves."""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from ..config import trackers
from .precision import Precision


def make_accelerator(precision: Precision, gradient_accumulation_steps: int, output_dir: str | None = None,
                     report_to: list[str] | None = None):
    """An Accelerator computing in `precision` (see precision.resolve_precision). With an output_dir,
    training curves also go to the trackers of `report_to` (see trackers); TensorBoard's and any local
    files of the others go to <output_dir>/runs."""
    # Accelerate owns device placement, autocast, the fp16 grad scaler and gradient accumulation. It
    # keeps them in process-wide state that refuses a second precision; one Python session may run
    # several jobs (the API in a notebook), so each starts from a clean one. The distributed set-up
    # (PartialState) is kept.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    log_with = trackers(report_to) if output_dir is not None else []
    return Accelerator(mixed_precision=precision.mode, gradient_accumulation_steps=gradient_accumulation_steps,
                       log_with=log_with or None,
                       project_dir=str(Path(output_dir).resolve() / "runs") if log_with else None)


def start_tracking(accelerator, run_name: str) -> bool:
    """Open this run's trackers (none unless make_accelerator set some up)."""
    if not accelerator.log_with:
        return False
    # wandb would write its offline files to ./wandb wherever the script was started; keep them with the run.
    accelerator.init_trackers(run_name, init_kwargs={"wandb": {"dir": accelerator.logging_dir}})
    return True


def stop_tracking(accelerator) -> None:
    accelerator.end_training()
    accelerator.trackers = []  # a second run in this process (--compare_no_kd) opens its own
