"""The one training loop, for the teacher and the student alike, run through Accelerate.

The same code runs on a CPU, one GPU, or several GPUs/machines under `accelerate launch`: every
object that touches a device goes through accelerator.prepare, and only the main process writes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .batching import MODEL, EncodedSplit, eval_loader, padding_stats, train_loader
from .checkpoints import load_checkpoint, save_checkpoint
from .errors import UserError
from .metrics import classification_metrics, is_better
from .precision import Precision
from .prediction import predict_logits

@dataclass
class TrainConfig:
    num_train_epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    seed: int = 42
    metric_for_best_model: str = "accuracy"
    group_by_length: bool = True
    freeze_embeddings: bool = False  # keep the word-embedding table fixed (no gradient, no optimizer state)
    eval_steps: int | None = None  # also evaluate every N training batches, keeping the best model so far
    select_best: bool = True  # False: keep the last epoch (TinyBERT's intermediate stage has no useful head yet)
    checkpointing_steps: str | None = None  # "N": every N batches; "epoch": after every epoch; None: never
    save_total_limit: int | None = None  # keep at most this many checkpoints (the newest)
    checkpoint_dir: str | None = None  # where checkpoints go (set by the job)
    resume_from: str | None = None  # a checkpoint folder to continue from (set by the job)
    run_args: dict | None = None  # the flags a resumption must match (see checkpoints.RESUME_KEYS)


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def make_accelerator(precision: Precision, gradient_accumulation_steps: int, output_dir: str | None = None):
    """An Accelerator computing in `precision` (see precision.resolve_precision). With an output_dir
    and the tensorboard package installed, training curves also go to <output_dir>/runs/<role>
    through Accelerate's TensorBoard tracker."""
    from accelerate import Accelerator

    # Accelerate owns device placement, autocast, the fp16 grad scaler and gradient accumulation.
    tracked = output_dir is not None and tensorboard_available()
    return Accelerator(mixed_precision=precision.mode, gradient_accumulation_steps=gradient_accumulation_steps,
                       log_with="tensorboard" if tracked else None,
                       project_dir=str(Path(output_dir) / "runs") if tracked else None)


def start_tracking(accelerator, run_name: str) -> bool:
    """Open this run's trackers (none unless make_accelerator set TensorBoard up)."""
    if not accelerator.log_with:
        return False
    accelerator.init_trackers(run_name)
    return True


def stop_tracking(accelerator) -> None:
    accelerator.end_training()
    accelerator.trackers = []  # a second run in this process (--compare_no_kd) opens its own


def _scalars(record: dict) -> dict[str, float]:
    """An epoch's record as flat tracker scalars: train/loss, eval/accuracy, ..."""
    scalars = {f"train/{k.removeprefix('train_')}": v for k, v in record.items()
               if k.startswith("train_") and isinstance(v, (int, float))}
    scalars.update({f"eval/{k}": v for k, v in record.get("eval", {}).items() if isinstance(v, (int, float))})
    scalars["padding_efficiency"] = record["padding_efficiency"]
    return scalars


def _param_groups(params, weight_decay: float) -> list[dict]:
    # No weight decay on biases and LayerNorm weights, as BERT was pre-trained.
    decay, no_decay = [], []
    for param in params:
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw(params, cfg: TrainConfig, device) -> torch.optim.Optimizer:
    """AdamW, fused into one kernel per step where torch has it for the device: on a 2-core CPU the
    for-loop version spends ~100 ms a step on MiniLM-L6 and the fused one ~30 ms, the same update."""
    groups = _param_groups(params, cfg.weight_decay)
    if getattr(device, "type", str(device)) in ("cpu", "cuda"):
        try:
            return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)
        except (RuntimeError, TypeError, ValueError):  # an older torch, or a dtype it cannot fuse
            pass
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def train(
    model,
    train_data: EncodedSplit,
    eval_data: EncodedSplit | None,
    objective: Callable,
    cfg: TrainConfig,
    accelerator,
    label_names: list[str],
    on_best: Callable[[torch.nn.Module, dict], None],
) -> dict:
    """Train model on objective; after each epoch evaluate, and hand the best epoch's model to
    on_best (main process only). Returns {"best_epoch", "best", "history", "evals"}."""
    from transformers import get_linear_schedule_with_warmup

    if cfg.freeze_embeddings:
        freeze_word_embeddings(model)
    train_dl = train_loader(train_data, cfg.batch_size, cfg.seed, cfg.group_by_length)
    plan = train_dl.batch_sampler  # kept: prepare() may wrap it in a per-process shard
    eval_dl = eval_loader(eval_data, cfg.eval_batch_size) if eval_data is not None else None
    # Training-only modules of the objective (a projection to the teacher's width) learn with the model.
    extra = getattr(objective, "trainable", None)
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    optimizer = _adamw(params, cfg, accelerator.device)
    total_updates = math.ceil(len(train_dl) / cfg.gradient_accumulation_steps) * cfg.num_train_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_updates), total_updates)
    # prepare() shards the loader per process, wraps the model for DDP and autocast, and makes the
    # scheduler step once per real optimizer update under gradient accumulation.
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, scheduler)
    if eval_dl is not None:
        eval_dl = accelerator.prepare(eval_dl)
    if extra is not None:
        objective.trainable = accelerator.prepare(extra)

    progress = {"epoch": 1, "step": 0, "global_step": 0, "sums": None, "history": [],
                "best": {"value": None, "epoch": None, "record": None}}
    if cfg.resume_from:
        progress = load_checkpoint(accelerator, Path(cfg.resume_from))
        accelerator.print(f"resumed from {cfg.resume_from}: epoch {progress['epoch']}, "
                          f"{progress['step']} of its batches done")
    history, best = progress["history"], progress["best"]
    evals = progress.setdefault("evals", [])  # the evaluations inside epochs (--eval_steps), in order
    metric = cfg.metric_for_best_model

    def checkpoint(epoch: int, step: int, global_step: int, sums: dict | None) -> None:
        state = {"epoch": epoch, "step": step, "global_step": global_step, "history": history, "best": best,
                 "evals": evals, "run_args": cfg.run_args or {}}
        save_checkpoint(accelerator, Path(cfg.checkpoint_dir), global_step, state, cfg.save_total_limit, sums)

    def evaluate_within_epoch(epoch: int, global_step: int) -> None:
        """--eval_steps: score the model mid-epoch and keep it if it is the best so far. Runs with the
        random state forked, so training (dropout, batches, a resumed run) goes on exactly as without it."""
        record = {"epoch": epoch, "global_step": global_step,
                  "eval": _evaluate(model, eval_dl, eval_data, accelerator, label_names, keep_rng=True)}
        improved = cfg.select_best and (best["value"] is None or is_better(metric, record["eval"][metric], best["value"]))
        record["is_best"] = improved
        evals.append(record)
        accelerator.print(f"step {global_step}: validation {metric} {record['eval'][metric]:.4f}"
                          + (" | best so far" if improved else ""))
        # Its own tags: the epoch-level eval/* curves count epochs, these count batches.
        accelerator.log({f"eval_steps/{k}": v for k, v in record["eval"].items() if isinstance(v, (int, float))},
                        step=global_step)
        if improved:
            best.update(value=record["eval"][metric], epoch=epoch, record=record)
            if accelerator.is_main_process:
                on_best(accelerator.unwrap_model(model), {"best_epoch": epoch, "best": record, "history": history})
        accelerator.wait_for_everyone()

    every = int(cfg.checkpointing_steps) if cfg.checkpoint_dir and str(cfg.checkpointing_steps).isdigit() else None
    mid_epoch_eval = evaluate_within_epoch if cfg.eval_steps and eval_dl is not None else None
    global_step = progress["global_step"]
    for epoch in range(progress["epoch"], cfg.num_train_epochs + 1):
        # Every process draws the same batches, and a new order each epoch. The prepared loader sets
        # its batch sampler's epoch from its own count of iterations when one process runs, so both are
        # set: a resumed run must not restart that count at 0.
        train_dl.set_epoch(epoch - 1)
        plan.set_epoch(epoch - 1)
        resume = progress if epoch == progress["epoch"] and progress["step"] else None
        record, global_step = _train_epoch(model, train_dl, objective, optimizer, scheduler, cfg, accelerator, epoch,
                                           global_step, resume, checkpoint if every else None, every, mid_epoch_eval)
        if eval_dl is not None:
            record["eval"] = _evaluate(model, eval_dl, eval_data, accelerator, label_names)
            value = record["eval"][metric]
        else:
            value = float(epoch)  # no validation split: the last epoch is the one kept
        improved = best["value"] is None or not (eval_dl is not None and cfg.select_best) or \
            is_better(metric, value, best["value"])
        if improved:
            best.update(value=value, epoch=epoch, record=record)
        record["is_best"] = improved
        history.append(record)
        accelerator.print(_epoch_line(record, cfg.metric_for_best_model))
        accelerator.log(_scalars(record), step=epoch)  # a no-op without trackers
        if improved and accelerator.is_main_process:
            on_best(accelerator.unwrap_model(model), {"best_epoch": epoch, "best": record, "history": history})
        accelerator.wait_for_everyone()  # no process runs ahead of the save
        if cfg.checkpoint_dir and cfg.checkpointing_steps == "epoch":
            checkpoint(epoch + 1, 0, global_step, None)
    return {"best_epoch": best["epoch"], "best": best["record"], "history": history, "evals": evals}


def freeze_word_embeddings(model) -> None:
    """Fix the word-embedding table: on a small BERT it holds about half the weights (30,522 x 384 of
    MiniLM-L6's 22.7M), and training it costs a dense gradient and an AdamW update of all its rows on
    every batch, while a batch touches a few hundred of them."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is None or not hasattr(embeddings, "weight"):
        raise UserError(f"--freeze_embeddings: {type(model).__name__} has no word-embedding table to freeze")
    embeddings.weight.requires_grad_(False)


def _resumed_batches(accelerator, train_dl, done: int):
    """The epoch's batches after the first `done`. The uninterrupted run drew the loader's base seed
    from the global RNG when the epoch began, before the checkpoint's RNG state was taken; the draw
    is made here with the RNG forked, so dropout continues exactly where it stopped."""
    import itertools

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


def _train_epoch(model, train_dl, objective, optimizer, scheduler, cfg, accelerator, epoch, global_step: int,
                 resume: dict | None, checkpoint, every: int | None, mid_epoch_eval=None) -> tuple[dict, int]:
    modules = [model] + ([objective.trainable] if getattr(objective, "trainable", None) is not None else [])
    for module in modules:
        module.train()
    done = resume["step"] if resume else 0
    sums = EpochSums.restore(resume["sums"] if resume else None, accelerator.device)
    seen_before = sums.seen
    bar = tqdm(
        total=len(train_dl),
        initial=done,
        desc=f"epoch {epoch}/{cfg.num_train_epochs}",
        disable=not accelerator.is_local_main_process,  # one bar per machine
        mininterval=1.0,
    )
    batches = _resumed_batches(accelerator, train_dl, done) if done else train_dl
    start = time.perf_counter()
    try:
        for step, batch in enumerate(batches, start=done + 1):
            # accumulate() skips the gradient all-reduce and optimizer step on accumulation micro-steps.
            with accelerator.accumulate(*modules):
                # The objective asks for hidden states or attention maps when one of its terms needs them.
                outputs = model(**batch[MODEL], **objective.model_kwargs)  # outputs.logits: (bs, num_labels)
                loss, terms = objective(batch, outputs)
                if not torch.isfinite(loss):
                    raise UserError(
                        f"the loss became {loss.item()} at epoch {epoch}, step {step}; the best model so far and the "
                        f"checkpoints are kept. Lower --learning_rate, or use --mixed_precision bf16/no instead of fp16"
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


def peak_memory_mb(device) -> float:
    """Peak memory so far: allocated GPU memory on CUDA, the process's peak resident set on CPU."""
    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _evaluate(model, eval_dl, eval_data: EncodedSplit, accelerator, label_names, keep_rng: bool = False) -> dict:
    if keep_rng:  # iterating a DataLoader draws from the global RNG
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            logits = predict_logits(model, eval_dl, accelerator)
    else:
        logits = predict_logits(model, eval_dl, accelerator)
    labels = np.asarray(eval_data.labels)
    metrics = classification_metrics(labels, logits.argmax(-1), label_names)
    metrics["loss"] = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    return metrics


def _epoch_line(record: dict, metric: str) -> str:
    line = (f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
            f"{record['train_samples_per_second']:.1f} samples/s, padding efficiency {record['padding_efficiency']:.2f}")
    if "eval" in record:
        e = record["eval"]
        line += f" | validation accuracy {e['accuracy']:.4f}, f1 {e['f1']:.4f}, loss {e['loss']:.4f}"
    if record.get("is_best"):
        line += f" | best so far by {metric}" if "eval" in record else " | saved"
    return line
