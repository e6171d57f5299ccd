"""The one training loop, for the teacher and the student alike, run through Accelerate.

The same code runs on a CPU, one GPU, or several GPUs/machines under `accelerate launch`: every
object that touches a device goes through accelerator.prepare, and only the main process writes.
"""

from __future__ import annotations

import itertools
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
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
from ..data.labels import is_regression
from ..distillation.objectives import Objective
from ..errors import UserError
from ..safety.checkpoints import load_checkpoint, save_checkpoint
from ..safety.stopping import Stopped, StopRequest, deferred
from ..scoring.metrics import classification_metrics, is_better, regression_metrics
from ..scoring.prediction import predict_logits
from .optim import adamw, freeze_word_embeddings


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


def train(
    model,
    train_data: EncodedSplit,
    eval_data: EncodedSplit | None,
    objective: Objective,
    cfg: TrainConfig,
    accelerator,
    label_names: list[str],
    on_best: Callable[[torch.nn.Module, Outcome], None],
    checkpoints: CheckpointPlan | None = None,
) -> Outcome:
    """Train model on objective; after each epoch evaluate, and hand the best epoch's model to
    on_best (main process only). Returns the best epoch, its record and the whole history."""
    checkpoints = checkpoints or CheckpointPlan()
    if cfg.freeze_embeddings:
        freeze_word_embeddings(model)
    train_dl = train_loader(train_data, cfg.batch_size, cfg.seed, cfg.group_by_length)
    plan = train_dl.batch_sampler  # kept: prepare() may wrap it in a per-process shard
    eval_dl = eval_loader(eval_data, cfg.eval_batch_size) if eval_data is not None else None
    # The objective's own parameters (a projection to the teacher's width) learn with the model.
    optimizer = adamw(list(model.parameters()) + list(objective.parameters()), cfg, accelerator.device)
    total_updates = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps) * cfg.num_train_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_updates), total_updates)
    # prepare() shards the loader per process, wraps the model for DDP and autocast, and makes the
    # scheduler step once per real optimizer update under gradient accumulation.
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, scheduler)
    if eval_dl is not None:
        eval_dl = accelerator.prepare(eval_dl)
    # The objective's trainable parts are prepared like the model; the objective itself is not, so
    # that its loss terms stay outside autocast, in float32.
    for name, part in list(objective.named_children()):
        setattr(objective, name, accelerator.prepare(part))

    modules = [model, *objective.children()]  # what learns, and what a checkpoint saves
    progress = Progress()
    if checkpoints.resume_from:
        progress = Progress.from_json(load_checkpoint(accelerator, Path(checkpoints.resume_from)))
        accelerator.print(f"resumed from {checkpoints.resume_from}: epoch {progress.epoch}, "
                          f"{progress.step} of its batches done")
    best, metric = progress.best, cfg.metric_for_best_model

    last_checkpoint: tuple[int, Path] | None = None  # (global step, folder) of the newest one written

    def checkpoint(epoch: int, step: int, global_step: int, sums: dict | None) -> Path:
        nonlocal last_checkpoint
        check_finite_weights(modules, f"update {global_step}")
        state = Progress(epoch, step, global_step, None, progress.history, best, progress.evals)
        path = save_checkpoint(accelerator, Path(checkpoints.directory), global_step,
                               state.to_json(checkpoints.run_args), cfg.save_total_limit, sums)
        last_checkpoint = global_step, path
        return path

    def stop_if_asked(request: StopRequest, epoch: int, step: int, global_step: int, sums: EpochSums | None) -> None:
        """At a step boundary (after an optimizer update, so the state is whole), stop when a signal asked
        to: checkpoint the work so far, unless this step's checkpoint is written already, and raise
        Stopped. sums None: the epoch is over, evaluated and recorded, and the next one starts afresh."""
        signum = _agreed_stop(request, accelerator)
        if signum is None:
            return
        path = None
        if checkpoints.directory:
            if last_checkpoint is not None and last_checkpoint[0] == global_step:
                path = last_checkpoint[1]
            elif sums is None:
                path = checkpoint(epoch + 1, 0, global_step, None)
            else:
                path = checkpoint(epoch, step, global_step, sums.to_json())
        raise Stopped(signum, epoch, step, len(train_dl), path, best.epoch is not None,
                      announce=accelerator.is_main_process)

    def keep_if_best(epoch: int, value: float, record: dict, where: str) -> None:
        check_finite_weights(modules, where)  # a non-finite model never replaces the one saved
        best.value, best.epoch, best.record = value, epoch, record
        if accelerator.is_main_process:
            on_best(accelerator.unwrap_model(model), Outcome(epoch, record, progress.history))

    def evaluate_within_epoch(epoch: int, global_step: int) -> None:
        """--eval_steps: score the model mid-epoch and keep it if it is the best so far. Runs with the
        random state forked, so training (dropout, batches, a resumed run) goes on exactly as without it."""
        record = {"epoch": epoch, "global_step": global_step,
                  "eval": _evaluate(model, eval_dl, eval_data, accelerator, label_names, keep_rng=True)}
        improved = cfg.select_best and (best.value is None or is_better(metric, record["eval"][metric], best.value))
        record["is_best"] = improved
        progress.evals.append(record)
        accelerator.print(f"step {global_step}: validation {metric} {record['eval'][metric]:.4f}"
                          + (" | best so far" if improved else ""))
        # Its own tags: the epoch-level eval/* curves count epochs, these count batches.
        accelerator.log({f"eval_steps/{k}": v for k, v in record["eval"].items() if isinstance(v, (int, float))},
                        step=global_step)
        if improved:
            keep_if_best(epoch, record["eval"][metric], record, f"epoch {epoch}, update {global_step}")
        accelerator.wait_for_everyone()

    every = int(cfg.checkpointing_steps) if checkpoints.directory and str(cfg.checkpointing_steps).isdigit() else None
    mid_epoch_eval = evaluate_within_epoch if cfg.eval_steps and eval_dl is not None else None
    global_step = progress.global_step
    # From here a signal stops the run at a step boundary, not mid-step or mid-save (see stopping.py).
    with deferred(announce=accelerator.is_main_process) as request:
        for epoch in range(progress.epoch, cfg.num_train_epochs + 1):
            # Every process draws the same batches, and a new order each epoch. The prepared loader sets
            # its batch sampler's epoch from its own count of iterations when one process runs, so both
            # are set: a resumed run must not restart that count at 0.
            train_dl.set_epoch(epoch - 1)
            plan.set_epoch(epoch - 1)
            resume = progress if epoch == progress.epoch and progress.step else None
            record, global_step = _train_epoch(model, train_dl, objective, optimizer, scheduler, cfg, accelerator,
                                               epoch, global_step, resume, checkpoint if every else None, every,
                                               mid_epoch_eval, partial(stop_if_asked, request))
            check_finite_weights(modules, f"the end of epoch {epoch}")  # whether or not the epoch is the best
            if eval_dl is not None:
                record["eval"] = _evaluate(model, eval_dl, eval_data, accelerator, label_names)
                value = record["eval"][metric]
            else:
                value = float(epoch)  # no validation split: the last epoch is the one kept
            improved = best.value is None or not (eval_dl is not None and cfg.select_best) or \
                is_better(metric, value, best.value)
            record["is_best"] = improved
            progress.history.append(record)
            accelerator.print(_epoch_line(record, cfg.metric_for_best_model))
            accelerator.log(_scalars(record), step=epoch)  # a no-op without trackers
            if improved:
                keep_if_best(epoch, value, record, f"the end of epoch {epoch}")
            accelerator.wait_for_everyone()  # no process runs ahead of the save
            if checkpoints.directory and cfg.checkpointing_steps == "epoch":
                checkpoint(epoch + 1, 0, global_step, None)
            stop_if_asked(request, epoch, len(train_dl), global_step, None)  # a signal during the evaluation
    return progress.outcome()


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


def _train_epoch(model, train_dl, objective: Objective, optimizer, scheduler, cfg, accelerator, epoch,
                 global_step: int, resume: Progress | None, checkpoint, every: int | None,
                 mid_epoch_eval=None, stop_if_asked=None) -> tuple[dict, int]:
    modules = [model, *objective.children()]  # what learns: the model and the objective's trainable parts
    model.train()
    objective.train()  # its teacher is not one of its modules and stays in eval mode
    done = resume.step if resume else 0
    sums = EpochSums.restore(resume.sums if resume else None, accelerator.device)
    seen_before = sums.seen
    bar = tqdm(
        total=len(train_dl),
        initial=done,
        desc=f"epoch {epoch}/{cfg.num_train_epochs}",
        disable=not accelerator.is_local_main_process,  # one bar per machine
        mininterval=1.0,
    )
    batches = _resumed_batches(accelerator, train_dl, done) if done else train_dl
    model_outputs = {f"output_{name}": True for name in objective.model_outputs}
    start = time.perf_counter()
    try:
        for step, batch in enumerate(batches, start=done + 1):
            # accumulate() skips the gradient all-reduce and optimizer step on accumulation micro-steps.
            with accelerator.accumulate(*modules):
                # Hidden states or attention maps come back when one of the objective's terms needs them.
                outputs = model(**batch[MODEL], **model_outputs)  # outputs.logits: (bs, num_labels)
                loss, terms = objective(batch, outputs)
                if not torch.isfinite(loss):
                    raise UserError(
                        f"the loss became {loss.item()} at epoch {epoch}, step {step}; the best model so far and the "
                        f"checkpoints are kept. {NON_FINITE_ADVICE}"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_([p for m in modules for p in m.parameters()], cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            sums.loss += loss.detach()
            for name, value in terms.items():
                sums.terms[name] = sums.terms.get(name, 0.0) + value.detach()
            sums.seen += batch["row"].numel() * accelerator.num_processes
            real, padded = padding_stats(batch)
            sums.real_tokens, sums.padded_tokens = sums.real_tokens + real, sums.padded_tokens + padded
            global_step += 1
            if step % 10 == 0 or step == len(train_dl):  # .item() waits for the device: not every step
                rate = (sums.seen - seen_before) / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{sums.loss.item() / step:.4f}", samples_s=f"{rate:.1f}", refresh=False)
            bar.update()
            # The epoch's own evaluation covers its last batch; an evaluation comes before a checkpoint
            # of the same step, so the checkpoint knows the best model.
            if mid_epoch_eval and global_step % cfg.eval_steps == 0 and step < len(train_dl):
                mid_epoch_eval(epoch, global_step)
            if every and global_step % every == 0 and accelerator.sync_gradients:
                checkpoint(epoch, step, global_step, sums.to_json())
            if stop_if_asked and accelerator.sync_gradients:  # not between the micro-steps of one update
                stop_if_asked(epoch, step, global_step, sums)
    finally:
        bar.close()  # an error is then printed on a line of its own, after the bar
    seconds = time.perf_counter() - start
    steps = len(train_dl)
    record = {
        "epoch": epoch,
        "train_loss": accelerator.reduce(sums.loss / steps, "mean").item(),
        "train_seconds": seconds,
        "train_samples_per_second": (sums.seen - seen_before) / max(seconds, 1e-9),
        # real tokens / tokens processed, on this process's batches
        "padding_efficiency": float(sums.real_tokens) / max(sums.padded_tokens, 1),
        "peak_memory_mb": peak_memory_mb(accelerator.device),
    }
    for name, total in sums.terms.items():
        record[f"train_{name}_loss"] = accelerator.reduce(total / steps, "mean").item()
    return record, global_step


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


def _evaluate(model, eval_dl, eval_data: EncodedSplit, accelerator, label_names, keep_rng: bool = False) -> dict:
    if keep_rng:  # iterating a DataLoader draws from the global RNG
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            logits = predict_logits(model, eval_dl, accelerator)
    else:
        logits = predict_logits(model, eval_dl, accelerator)
    labels = np.asarray(eval_data.labels)
    if is_regression(label_names):  # logits: (n, 1), the scores
        metrics = regression_metrics(labels, logits[:, 0])
        metrics["loss"] = metrics["mse"]  # the gold term the model trains on
        return metrics
    metrics = classification_metrics(labels, logits.argmax(-1), label_names)
    metrics["loss"] = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    return metrics


def _epoch_line(record: dict, metric: str) -> str:
    line = (f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
            f"{record['train_samples_per_second']:.1f} samples/s, padding efficiency {record['padding_efficiency']:.2f}")
    if "eval" in record and "pearson" in record["eval"]:
        e = record["eval"]
        line += f" | validation pearson {e['pearson']:.4f}, spearman {e['spearman']:.4f}, mse {e['mse']:.4f}"
    elif "eval" in record:
        e = record["eval"]
        line += f" | validation accuracy {e['accuracy']:.4f}, f1 {e['f1']:.4f}, loss {e['loss']:.4f}"
    if record.get("is_best"):
        line += f" | best so far by {metric}" if "eval" in record else " | saved"
    return line
