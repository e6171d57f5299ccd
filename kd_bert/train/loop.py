"""The one training loop, for the teacher and the student alike, run through Accelerate.

The same code runs on a CPU, one GPU, or several GPUs/machines under `accelerate launch`: every
object that touches a device goes through accelerator.prepare, and only the main process writes.
"""

from __future__ import annotations

import itertools
import logging
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ..config import TrainConfig
from ..data.batching import (
    MODEL,
    EncodedSplit,
    eval_loader,
    padding_stats,
    train_loader,
)
from ..distillation.objectives import Objective
from ..errors import UserError
from ..log import shows_progress
from ..safety.checkpoints import load_checkpoint, save_checkpoint
from ..safety.stopping import Stopped, StopRequest, deferred
from ..scoring.metrics import is_better
from ..scoring.prediction import predict_logits
from ..task import Task
from .optim import adamw, freeze_word_embeddings

log = logging.getLogger(__name__)


@dataclass
class Best:
    """The best model so far: its metric value, epoch and record (an epoch's, or an --eval_steps one's)."""

    value: float | None = None
    epoch: int | None = None
    record: dict | None = None


@dataclass
class Progress:
    """Where the loop is: a checkpoint saves it (progress.json) and a resumed run starts from it."""

    epoch: int = 1
    step: int = 0  # batches of `epoch` done
    global_step: int = 0
    sums: dict | None = None  # this process's running sums of the epoch (see EpochSums)
    history: list[dict] = field(default_factory=list)  # one record per finished epoch
    best: Best = field(default_factory=Best)
    evals: list[dict] = field(default_factory=list)  # the evaluations inside epochs (--eval_steps), in order

    @classmethod
    def from_json(cls, saved: dict) -> "Progress":
        return cls(saved["epoch"], saved["step"], saved["global_step"], saved.get("sums"), saved["history"],
                   Best(**saved["best"]), saved.get("evals", []))

    def to_json(self, run_args: dict) -> dict:
        return {"epoch": self.epoch, "step": self.step, "global_step": self.global_step, "history": self.history,
                "best": asdict(self.best), "evals": self.evals, "run_args": run_args}

    def outcome(self) -> "Outcome":
        return Outcome(self.best.epoch, self.best.record, self.history, self.evals)


@dataclass
class Outcome:
    """What a run has produced so far: handed to on_best with each new best model, and returned."""

    best_epoch: int | None
    best: dict | None  # the best model's record: its "eval" metrics, and "global_step" for an --eval_steps one
    history: list[dict]
    evals: list[dict] = field(default_factory=list)


@dataclass
class CheckpointPlan:
    """Where the job keeps this run's checkpoints (None: none are written), which one it resumes
    from, and the settings a resumption must match (see checkpoints.run_args)."""

    directory: str | None = None
    resume_from: str | None = None
    run_args: dict = field(default_factory=dict)


def _scalars(record: dict) -> dict[str, float]:
    """An epoch's record as flat tracker scalars: train/loss, eval/accuracy, ..."""
    scalars = {f"train/{k.removeprefix('train_')}": v for k, v in record.items()
               if k.startswith("train_") and isinstance(v, (int, float))}
    scalars.update({f"eval/{k}": v for k, v in record.get("eval", {}).items() if isinstance(v, (int, float))})
    scalars["padding_efficiency"] = record["padding_efficiency"]
    return scalars


@dataclass
class Run:
    """What one run of the loop is asked for, besides the model and its data: its settings, its task,
    the objective it minimizes, where each new best model goes (on_best, main process only), its
    checkpoints, and who hears of every evaluation (on_evaluation: the update and the value of the
    metric that picks the kept model, once
    the best model is kept; a sweep stops a hopeless trial from there by raising)."""

    cfg: TrainConfig
    task: Task
    objective: Objective
    on_best: Callable[[torch.nn.Module, Outcome], None]
    checkpoints: CheckpointPlan = field(default_factory=CheckpointPlan)
    on_evaluation: Callable[[int, float], None] | None = None


def train(model, train_data: EncodedSplit, eval_data: EncodedSplit | None, run: Run, accelerator) -> Outcome:
    """Train the model on run.objective; after each epoch (and every --eval_steps batches) evaluate, and
    hand each new best model to run.on_best. Returns the best epoch, its record and the whole history."""
    loop = Loop(model, train_data, eval_data, run, accelerator)
    # From here a signal stops the run at a step boundary, not mid-step or mid-save (see stopping.py).
    with deferred(announce=accelerator.is_main_process) as loop.request:
        for epoch in range(loop.progress.epoch, run.cfg.num_train_epochs + 1):
            record = train_epoch(loop, epoch)
            end_epoch(loop, epoch, record)
    return loop.progress.outcome()


class Loop:
    """Everything the loop holds and changes: the prepared model, optimizer, schedule and loaders, where
    it is (progress: epoch, step, history, best), the newest checkpoint, and the stop request."""

    def __init__(self, model, train_data: EncodedSplit, eval_data: EncodedSplit | None, run: Run, accelerator):
        cfg, objective = run.cfg, run.objective
        self.run, self.cfg, self.accelerator, self.eval_data = run, cfg, accelerator, eval_data
        if cfg.freeze_embeddings:
            freeze_word_embeddings(model)
        train_dl = train_loader(train_data, cfg.batch_size, cfg.seed, cfg.group_by_length)
        self.plan = train_dl.batch_sampler  # kept: prepare() may wrap it in a per-process shard
        eval_dl = eval_loader(eval_data, cfg.eval_batch_size) if eval_data is not None else None
        # The objective's own parameters (a projection to the teacher's width) learn with the model.
        optimizer = adamw(list(model.parameters()) + list(objective.parameters()), cfg, accelerator.device)
        total_updates = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps) * cfg.num_train_epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_updates), total_updates)
        # prepare() shards the loader per process, wraps the model for DDP and autocast, and makes the
        # scheduler step once per real optimizer update under gradient accumulation.
        self.model, self.optimizer, self.train_dl, self.scheduler = accelerator.prepare(model, optimizer, train_dl,
                                                                                        scheduler)
        self.eval_dl = accelerator.prepare(eval_dl) if eval_dl is not None else None
        # The objective's trainable parts are prepared like the model; the objective itself is not, so
        # that its loss terms stay outside autocast, in float32.
        for name, part in list(objective.named_children()):
            setattr(objective, name, accelerator.prepare(part))
        self.modules = [self.model, *objective.children()]  # what learns, and what a checkpoint saves
        # Hidden states or attention maps come back when one of the objective's terms needs them.
        self.model_outputs = {f"output_{name}": True for name in objective.model_outputs}

        checkpoints = run.checkpoints
        self.progress = Progress()
        if checkpoints.resume_from:
            self.progress = Progress.from_json(load_checkpoint(accelerator, Path(checkpoints.resume_from)))
            log.info(f"resumed from {checkpoints.resume_from}: epoch {self.progress.epoch}, "
                              f"{self.progress.step} of its batches done")
            log.debug(f"resume: the model, optimizer, scheduler and random states are the checkpoint's; global "
                      f"step {self.progress.global_step}, best so far {self.progress.best}; the epoch's first "
                      f"{self.progress.step} batches are skipped, drawn in the same order")
        self.best, self.metric = self.progress.best, cfg.metric_for_best_model
        self.global_step = self.progress.global_step
        self.checkpoint_every = int(cfg.checkpointing_steps) \
            if checkpoints.directory and str(cfg.checkpointing_steps).isdigit() else None
        self.eval_every = cfg.eval_steps if cfg.eval_steps and self.eval_dl is not None else None
        self.last_checkpoint: tuple[int, Path] | None = None  # (global step, folder) of the newest one written
        self.request: StopRequest | None = None


def train_epoch(loop: Loop, epoch: int) -> dict:
    """One pass over the training batches (the rest of one, for a resumed run); its record."""
    cfg, accelerator, progress = loop.cfg, loop.accelerator, loop.progress
    # Every process draws the same batches, and a new order each epoch. The prepared loader sets its
    # batch sampler's epoch from its own count of iterations when one process runs, so both are set: a
    # resumed run must not restart that count at 0.
    loop.train_dl.set_epoch(epoch - 1)
    loop.plan.set_epoch(epoch - 1)
    resume = progress if epoch == progress.epoch and progress.step else None
    loop.model.train()
    loop.run.objective.train()  # its teacher is not one of its modules and stays in eval mode
    done = resume.step if resume else 0
    sums = EpochSums.restore(resume.sums if resume else None, accelerator.device)
    seen_before = sums.seen
    steps = len(loop.train_dl)
    bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch}/{cfg.num_train_epochs}",
               disable=not accelerator.is_local_main_process or not shows_progress(),  # one bar per machine
               mininterval=1.0)
    batches = _resumed_batches(accelerator, loop.train_dl, done) if done else loop.train_dl
    start = time.perf_counter()
    try:
        for step, batch in enumerate(batches, start=done + 1):
            loss, terms = training_step(loop, batch, epoch, step)
            sums.add(loss, terms, batch, accelerator.num_processes)
            loop.global_step += 1
            if step % 10 == 0 or step == steps:  # .item() waits for the device: not every step
                rate = (sums.seen - seen_before) / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{sums.loss.item() / step:.4f}", samples_s=f"{rate:.1f}", refresh=False)
            bar.update()
            # The epoch's own evaluation covers its last batch; an evaluation comes before a checkpoint
            # of the same step, so the checkpoint knows the best model.
            if loop.eval_every and loop.global_step % loop.eval_every == 0 and step < steps:
                evaluate_within_epoch(loop, epoch)
            if loop.checkpoint_every and loop.global_step % loop.checkpoint_every == 0 and accelerator.sync_gradients:
                checkpoint(loop, epoch, step, sums.to_json())
            if accelerator.sync_gradients:  # not between the micro-steps of one update
                stop_if_asked(loop, epoch, step, sums)
    finally:
        bar.close()  # an error is then printed on a line of its own, after the bar
    return sums.record(epoch, steps, time.perf_counter() - start, seen_before, accelerator)


def training_step(loop: Loop, batch: dict, epoch: int, step: int) -> tuple[torch.Tensor, dict]:
    """Forward, loss, backward and (at the end of an accumulation) the optimizer update."""
    accelerator, cfg = loop.accelerator, loop.cfg
    # accumulate() skips the gradient all-reduce and optimizer step on accumulation micro-steps.
    with accelerator.accumulate(*loop.modules):
        outputs = loop.model(**batch[MODEL], **loop.model_outputs)  # outputs.logits: (bs, num_labels)
        loss, terms = loop.run.objective(batch, outputs)
        if not torch.isfinite(loss):
            raise UserError(f"the loss became {loss.item()} at epoch {epoch}, step {step}; the best model so far and "
                            f"the checkpoints are kept. {NON_FINITE_ADVICE}")
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_([p for m in loop.modules for p in m.parameters()], cfg.max_grad_norm)
        loop.optimizer.step()
        loop.scheduler.step()
        loop.optimizer.zero_grad()
    return loss, terms


def end_epoch(loop: Loop, epoch: int, record: dict) -> None:
    """Evaluate the epoch, record it, keep its model if it is the best so far, and checkpoint."""
    accelerator, cfg, best = loop.accelerator, loop.cfg, loop.best
    check_finite_weights(loop.modules, f"the end of epoch {epoch}")  # whether or not the epoch is the best
    if loop.eval_dl is not None:
        record["eval"] = evaluate(loop)
        value = record["eval"][loop.metric]
    else:
        value = float(epoch)  # no validation split: the last epoch is the one kept
    improved = best.value is None or not (loop.eval_dl is not None and cfg.select_best) or \
        is_better(loop.metric, value, best.value)
    record["is_best"] = improved
    loop.progress.history.append(record)
    log.info(epoch_line(record, loop.run.task, cfg.metric_for_best_model, eval_split_name(cfg)))
    accelerator.log(_scalars(record), step=epoch)  # a no-op without trackers
    if improved:
        keep_if_best(loop, epoch, value, record, f"the end of epoch {epoch}")
    accelerator.wait_for_everyone()  # no process runs ahead of the save
    if loop.eval_dl is not None and loop.run.on_evaluation:
        loop.run.on_evaluation(loop.global_step, value)
    if loop.run.checkpoints.directory and cfg.checkpointing_steps == "epoch":
        checkpoint(loop, epoch + 1, 0, None)
    stop_if_asked(loop, epoch, len(loop.train_dl), None)  # a signal during the evaluation


def evaluate_within_epoch(loop: Loop, epoch: int) -> None:
    """--eval_steps: score the model mid-epoch and keep it if it is the best so far. Runs with the random
    state forked, so training (dropout, batches, a resumed run) goes on exactly as without it."""
    accelerator, best, metric, step = loop.accelerator, loop.best, loop.metric, loop.global_step
    record = {"epoch": epoch, "global_step": step, "eval": evaluate(loop, keep_rng=True)}
    improved = loop.cfg.select_best and (best.value is None or is_better(metric, record["eval"][metric], best.value))
    record["is_best"] = improved
    loop.progress.evals.append(record)
    log.info(f"step {step}: {eval_split_name(loop.cfg)} {metric} {record['eval'][metric]:.4f}"
                      + (" | best so far" if improved else ""))
    # Its own tags: the epoch-level eval/* curves count epochs, these count batches.
    accelerator.log({f"eval_steps/{k}": v for k, v in record["eval"].items() if isinstance(v, (int, float))},
                    step=step)
    if improved:
        keep_if_best(loop, epoch, record["eval"][metric], record, f"epoch {epoch}, update {step}")
    accelerator.wait_for_everyone()
    if loop.run.on_evaluation:
        loop.run.on_evaluation(step, record["eval"][metric])


def keep_if_best(loop: Loop, epoch: int, value: float, record: dict, where: str) -> None:
    check_finite_weights(loop.modules, where)  # a non-finite model never replaces the one saved
    loop.best.value, loop.best.epoch, loop.best.record = value, epoch, record
    if loop.accelerator.is_main_process:
        loop.run.on_best(loop.accelerator.unwrap_model(loop.model), Outcome(epoch, record, loop.progress.history))


def checkpoint(loop: Loop, epoch: int, step: int, sums: dict | None) -> Path:
    """The whole training state, to resume at `epoch`, after `step` of its batches."""
    check_finite_weights(loop.modules, f"update {loop.global_step}")
    progress, plan = loop.progress, loop.run.checkpoints
    state = Progress(epoch, step, loop.global_step, None, progress.history, loop.best, progress.evals)
    path = save_checkpoint(loop.accelerator, Path(plan.directory), loop.global_step, state.to_json(plan.run_args),
                           loop.cfg.save_total_limit, sums)
    loop.last_checkpoint = loop.global_step, path
    return path


def stop_if_asked(loop: Loop, epoch: int, step: int, sums: EpochSums | None) -> None:
    """At a step boundary (after an optimizer update, so the state is whole), stop when a signal asked to:
    checkpoint the work so far, unless this step's checkpoint is written already, and raise Stopped.
    sums None: the epoch is over, evaluated and recorded, and the next one starts afresh."""
    signum = _agreed_stop(loop.request, loop.accelerator)
    if signum is None:
        return
    path = None
    if loop.run.checkpoints.directory:
        if loop.last_checkpoint is not None and loop.last_checkpoint[0] == loop.global_step:
            path = loop.last_checkpoint[1]
        elif sums is None:
            path = checkpoint(loop, epoch + 1, 0, None)
        else:
            path = checkpoint(loop, epoch, step, sums.to_json())
    raise Stopped(signum, epoch, step, len(loop.train_dl), path, loop.best.epoch is not None,
                  announce=loop.accelerator.is_main_process)


def evaluate(loop: Loop, keep_rng: bool = False) -> dict:
    """The validation metrics of the model as it is; keep_rng: the random state as it was before."""
    if keep_rng:  # iterating a DataLoader draws from the global RNG
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            logits = predict_logits(loop.model, loop.eval_dl, loop.accelerator)
    else:
        logits = predict_logits(loop.model, loop.eval_dl, loop.accelerator)
    return loop.run.task.evaluate(loop.eval_data.labels, logits)


NON_FINITE_ADVICE = "Lower --learning_rate, or use --mixed_precision bf16/no instead of fp16"


def check_finite_weights(modules, where: str) -> None:
    """Refuse to go on (and so to save) once a weight is inf or nan: a loss can stay finite for a step
    after an update that broke the weights, and a run of one step would save them."""
    for module in modules:
        for name, param in module.named_parameters():
            if not torch.isfinite(param).all():
                kind = "nan" if torch.isnan(param).any() else "inf"
                raise UserError(f"the weights became {kind} by {where} ({name}); nothing was saved "
                                f"from this point: the best model so far and the checkpoints are kept. "
                                f"{NON_FINITE_ADVICE}")


def _resumed_batches(accelerator, train_dl, done: int):
    """The epoch's batches after the first `done`. The uninterrupted run drew the loader's base seed
    from the global RNG when the epoch began, before the checkpoint's RNG state was taken; the draw
    is made here with the RNG forked, so dropout continues exactly where it stopped."""
    iterator = iter(accelerator.skip_first_batches(train_dl, done))
    with torch.random.fork_rng(devices=[]):
        first = next(iterator, None)  # the first fetch starts the underlying loader and draws its seed
    return iter(()) if first is None else itertools.chain([first], iterator)


@dataclass
class EpochSums:
    """An epoch's running sums on this process; a checkpoint keeps them, so a resumed epoch reports
    what the uninterrupted one would have."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    seen: int = 0
    real_tokens: int | torch.Tensor = 0
    padded_tokens: int = 0

    @classmethod
    def restore(cls, saved: dict | None, device) -> "EpochSums":
        saved = saved or {"loss": 0.0, "terms": {}, "seen": 0, "real_tokens": 0, "padded_tokens": 0}
        return cls(torch.tensor(saved["loss"], device=device),
                   {k: torch.tensor(v, device=device) for k, v in saved["terms"].items()},
                   saved["seen"], saved["real_tokens"], saved["padded_tokens"])

    def to_json(self) -> dict:
        return {"loss": self.loss.item(), "terms": {k: v.item() for k, v in self.terms.items()}, "seen": self.seen,
                "real_tokens": int(self.real_tokens), "padded_tokens": int(self.padded_tokens)}

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], batch: dict, processes: int) -> None:
        self.loss += loss.detach()
        for name, value in terms.items():
            self.terms[name] = self.terms.get(name, 0.0) + value.detach()
        self.seen += batch["row"].numel() * processes
        real, padded = padding_stats(batch)
        self.real_tokens, self.padded_tokens = self.real_tokens + real, self.padded_tokens + padded

    def record(self, epoch: int, steps: int, seconds: float, seen_before: int, accelerator) -> dict:
        """The epoch's record: mean loss and terms over every process, speed, padding and memory."""
        record = {
            "epoch": epoch,
            "train_loss": accelerator.reduce(self.loss / steps, "mean").item(),
            "train_seconds": seconds,
            "train_samples_per_second": (self.seen - seen_before) / max(seconds, 1e-9),
            # real tokens / tokens processed, on this process's batches
            "padding_efficiency": float(self.real_tokens) / max(self.padded_tokens, 1),
            "peak_memory_mb": peak_memory_mb(accelerator.device),
        }
        for name, total in self.terms.items():
            record[f"train_{name}_loss"] = accelerator.reduce(total / steps, "mean").item()
        return record


def _agreed_stop(request: StopRequest, accelerator) -> int | None:
    """The signal that asked the run to stop, if any. Several processes agree on it (the highest any
    got) at every update, so that all stop at the same step: the checkpoint save is collective, and
    one process waiting in it for the others would wait forever. One process needs no collective."""
    if accelerator.num_processes == 1:
        return request.signum
    flag = torch.tensor([request.signum or 0], device=accelerator.device)
    return int(accelerator.gather(flag).max().item()) or None


def peak_memory_mb(device) -> float:
    """Peak memory so far: allocated GPU memory on CUDA, the process's peak resident set on CPU."""
    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def eval_split_name(cfg: TrainConfig) -> str:
    """The split the loop evaluates on, as its lines name it: with --selection_split, the selection split."""
    return "selection" if cfg.selection_split else "validation"


def epoch_line(record: dict, task: Task, metric: str, split: str = "validation") -> str:
    line = (f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
            f"{record['train_samples_per_second']:.1f} samples/s, padding efficiency {record['padding_efficiency']:.2f}")
    if "eval" in record:
        shown = ", ".join(f"{name} {record['eval'][name]:.4f}" for name in task.quality_metrics)
        line += f" | {split} {shown}"
    if record.get("is_best"):
        line += f" | best so far by {metric}" if "eval" in record else " | saved"
    return line
