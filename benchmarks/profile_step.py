"""Where a training step's time goes: matrix multiplication against everything else.

    python benchmarks/profile_step.py [--precision auto|no|bf16] [--seq_len 15] [--batch_size 32] [--output FILE.json]

Profiles training steps (forward, backward, fused AdamW, zero_grad) of MiniLM-L6 (the teacher) and of
its first 3 layers (the student) on a batch of SST-2's mean length, with and without frozen word
embeddings, and prints each step's time, the share of CPU time in matrix multiplications, the
largest other operators, and the model FLOPs achieved against a matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from distill_benchmark import forward_flops_per_token, matmul_peak_gflops, minilm_folder  # noqa: E402

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
              "mkldnn", "_scaled_dot_product")


def build(layers: int, freeze: bool):
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    from kd_bert.train.optim import freeze_word_embeddings

    logging.set_verbosity_error()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_folder(), num_labels=2, trust_remote_code=False)
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    if freeze:
        freeze_word_embeddings(model)
    return model


def profile(layers: int, freeze: bool, precision: str, batch: int, seq_len: int, steps: int = 10) -> dict:
    model = build(layers, freeze).train()
    ids = torch.randint(1000, 20000, (batch, seq_len))
    mask, labels = torch.ones_like(ids), torch.randint(0, 2, (batch,))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    from torch.profiler import profile as torch_profile

    with torch_profile() as prof:
        for _ in range(5):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if any(op in e.key for op in MATMUL_OPS))
    others = sorted((e for e in events if not any(op in e.key for op in MATMUL_OPS)),
                    key=lambda e: -e.self_cpu_time_total)[:5]
    seconds = statistics.median(times)
    flops = 3 * forward_flops_per_token(model.config, seq_len) * batch * seq_len
    return {"step_ms": 1000 * seconds, "samples_per_s": batch / seconds, "matmul_share": matmul / total,
            "gflops": flops / seconds / 1e9,
            "others": [(e.key, e.self_cpu_time_total / total) for e in others]}


def sst2_lengths(count: int, seed: int = 0) -> list[int]:
    """Token counts of `count` random SST-2 training sentences: the shapes a real run sees."""
    from transformers import AutoTokenizer

    from kd_bert.data.read import load_raw

    texts = list(load_raw(str(REPO / "data" / "sst2")).splits["train"].columns["sentence"])
    sample = random.Random(seed).sample(texts, count)
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), trust_remote_code=False)
    return [len(ids) for ids in tokenizer(sample)["input_ids"]]


def compile_probe(layers: int, precision: str, batch: int, steps: int, epoch_batches: int) -> dict:
    """Eager against torch.compile(dynamic=True) on length-grouped batches of SST-2's real lengths:
    the compile time paid once, the steady step time of each, and the break-even."""
    lengths = sorted(sst2_lengths(batch * steps))
    shapes = [max(lengths[i:i + batch]) for i in range(0, len(lengths), batch)]  # one length per batch
    random.Random(1).shuffle(shapes)
    result = {}
    for mode in ("eager", "compiled"):
        model = build(layers, False).train()
        forward = torch.compile(model, dynamic=True) if mode == "compiled" else model
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        start = time.perf_counter()
        times = []
        for seq_len in shapes:
            ids = torch.randint(1000, 20000, (batch, seq_len))
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = forward(input_ids=ids, attention_mask=torch.ones_like(ids),
                               labels=torch.randint(0, 2, (batch,))).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - t0)
        steady = statistics.median(times[len(times) // 2:])  # after every compilation
        result[mode] = {"total_s": time.perf_counter() - start, "steady_step_ms": 1000 * steady}
    saved_per_step = (result["eager"]["steady_step_ms"] - result["compiled"]["steady_step_ms"]) / 1000
    # Everything the compiled run spent beyond its steady step time: compilations and recompilations.
    overhead = result["compiled"]["total_s"] - len(shapes) * result["compiled"]["steady_step_ms"] / 1000
    result["speedup"] = result["eager"]["steady_step_ms"] / result["compiled"]["steady_step_ms"]
    result["compile_overhead_s"] = overhead
    result["epoch_saving_s"] = saved_per_step * epoch_batches
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="auto", choices=("auto", "no", "bf16"))
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--seq_len", type=int, default=15, help="tokens per sentence: SST-2's mean with [CLS] and [SEP]")
    p.add_argument("--compile_steps", type=int, default=0,
                   help="also time N training steps eager and under torch.compile(dynamic=True), on batches of "
                        "SST-2's real lengths, and say whether compiling pays for itself on a full SST-2 epoch "
                        "(default: 0, skip)")
    p.add_argument("--output", help="also write what was measured as JSON here")
    args = p.parse_args()
    from kd_bert.train.precision import cpu_bf16_flags, cpu_name, resolve_precision

    chosen = resolve_precision(args.precision)
    peak = matmul_peak_gflops(dtype="bfloat16" if chosen.mode == "bf16" else "float32")
    print(f"{chosen.describe()}; matmul peak measured now: {peak:.0f} GFLOP/s; batch {args.batch_size} x "
          f"{args.seq_len} tokens; {torch.get_num_threads()} threads")
    doc = {"machine": f"{platform.machine()} CPU ({cpu_name()}), {torch.get_num_threads()} threads, torch {torch.__version__}",
           "cpu_bf16_flags": cpu_bf16_flags(), "precision": chosen.mode, "precision_reason": chosen.reason, "matmul_peak_gflops": peak,
           "batch_size": args.batch_size, "seq_len": args.seq_len, "rows": [], "compile": []}
    print(f"{'model':<28}{'step':>10}{'samples/s':>11}{'matmul time':>13}{'model GFLOP/s':>15}{'of peak':>9}  largest other operators")
    for name, layers in (("teacher (6 layers)", 6), ("student (3 layers)", 3)):
        for freeze in (False, True):
            r = profile(layers, freeze, chosen.mode, args.batch_size, args.seq_len)
            others = ", ".join(f"{k.removeprefix('aten::')} {v:.0%}" for k, v in r["others"][:3])
            label = name + (" frozen emb." if freeze else "")
            doc["rows"].append({"model": name, "layers": layers, "freeze_embeddings": freeze, **r})
            print(f"{label:<28}{r['step_ms']:>8.0f}ms{r['samples_per_s']:>11.0f}{r['matmul_share']:>13.0%}"
                  f"{r['gflops']:>15.0f}{r['gflops'] / peak:>9.0%}  {others}")
    if args.compile_steps:
        epoch_batches = -(-67349 // args.batch_size)
        for name, layers in (("teacher (6 layers)", 6), ("student (3 layers)", 3)):
            c = compile_probe(layers, chosen.mode, args.batch_size, args.compile_steps, epoch_batches)
            doc["compile"].append({"model": name, "layers": layers, "steps": args.compile_steps,
                                   "epoch_batches": epoch_batches, **c})
            print(f"torch.compile, {name}: steady step {c['eager']['steady_step_ms']:.0f} ms eager, "
                  f"{c['compiled']['steady_step_ms']:.0f} ms compiled ({c['speedup']:.2f}x); compiling costs "
                  f"{c['compile_overhead_s']:.0f} s once; over one SST-2 epoch ({epoch_batches} batches) it would "
                  f"save {c['epoch_saving_s']:.0f} s")
    if args.output:
        Path(args.output).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
