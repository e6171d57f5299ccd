"""How fast a model scores: one timed pass over a split, and batch-1 latency example by example."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from ..data.batching import MODEL, EncodedSplit, Encoding, eval_loader
from .prediction import predict_logits

WARMUP_EXAMPLES = 3  # batch-1 forwards run before timing: the first calls allocate and pick kernels


def timed_logits(model, encoding: Encoding, labels: list[int] | None, batch_size: int,
                 accelerator) -> tuple[np.ndarray, float]:
    """(logits in split order, seconds): one length-sorted pass under inference_mode, timed after a
    forward pass on one batch, so the first model scored does not also pay for warming up."""
    split = EncodedSplit({MODEL: encoding}, labels)
    loader = accelerator.prepare(eval_loader(split, batch_size))
    with torch.inference_mode():
        model(**next(iter(loader))[MODEL])
    _sync(accelerator.device)
    start = time.perf_counter()
    logits = predict_logits(model, loader, accelerator)
    _sync(accelerator.device)
    return logits, time.perf_counter() - start


def throughput(examples: int, seconds: float) -> dict:
    return {"examples_per_second": examples / max(seconds, 1e-9), "eval_seconds": seconds}


def latency_ms(model, encoding: Encoding, samples: int, device) -> dict[str, float]:
    """Batch-1 latency of the model's forward pass over the split's first `samples` examples, each
    at its own length (no padding): the median and 95th percentile in milliseconds."""
    times = sorted(batch1_times(model, encoding, samples, device))
    if not times:
        return {}
    return {"latency_p50_ms": statistics.median(times), "latency_p95_ms": p95(times), "latency_examples": len(times)}


def p95(ordered: list[float]) -> float:
    """The 95th percentile of times sorted in ascending order, as every latency here reports it."""
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def batch1_times(model, encoding: Encoding, samples: int, device) -> list[float]:
    """Milliseconds of the model's forward pass on each of the split's first `samples` examples alone,
    after WARMUP_EXAMPLES untimed ones."""
    rows = list(range(min(samples, len(encoding.input_ids))))
    times = []
    warmup = rows[:WARMUP_EXAMPLES]
    model.eval()
    with torch.inference_mode():
        for i, row in enumerate(warmup + rows):
            inputs = _one_example(encoding, row, device)
            _sync(device)
            start = time.perf_counter()
            model(**inputs)
            _sync(device)
            if i >= len(warmup):
                times.append((time.perf_counter() - start) * 1000)
    return times


def _one_example(encoding: Encoding, row: int, device) -> dict[str, torch.Tensor]:
    inputs = {"input_ids": torch.tensor([encoding.input_ids[row]], device=device)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if encoding.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([encoding.token_type_ids[row]], device=device)
    return inputs


def _sync(device) -> None:
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize(device)
