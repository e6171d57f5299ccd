"""How far a static-embedding student can go: model2vec's distillation of a packaged sentence transformer, timed,
with a classifier head trained on its pooled embeddings of the gold labels (no teacher yet).

    pip install --no-deps model2vec==0.10.0 skeletoken==0.6.1   # see below for why --no-deps
    python benchmarks/static_embeddings.py --data_path ./data/sst2 --output benchmarks/results/static/minilm.json

model2vec turns the model's vocabulary into one vector per token (a forward pass per token, then PCA); a
sentence is the mean of its tokens' vectors, so the "student" has no layers at all. Its extra `distill`
pins transformers < 5.4, while the toolkit runs on transformers 5.x beyond that; its code runs on the newer
one, so the two packages are installed without their pins. The heads (a linear layer, and one hidden layer of
512) train for 20 epochs with AdamW on the training split's embeddings; each one's best validation accuracy
over the epochs is reported, so the numbers are an upper bound for those heads, not a held-out score.
Batch-1 latency is the median over the first 200 validation sentences; throughput encodes the whole split.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kd_bert.registries.formats import read_tsv  # noqa: E402


def read(path: Path) -> tuple[list[str], list[int]]:
    """A GLUE-form TSV's sentences and label ids, read as the toolkit reads them; a row it cannot read stops the
    benchmark rather than leave the split short."""
    split = read_tsv(path)
    if split.bad:
        line, problem = split.bad[0]
        sys.exit(f"error: {path}: {len(split.bad)} rows cannot be read (line {line}: {problem})")
    return split.columns["sentence"], [int(label) for label in split.columns["label"]]


def head_accuracy(head, train_x, train_y, dev_x, dev_y, epochs: int = 20) -> float:
    import torch

    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    best = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 256):
            batch = order[start:start + 256]
            loss = torch.nn.functional.cross_entropy(head(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            best = max(best, (head(dev_x).argmax(-1) == dev_y).float().mean().item())
    return round(100 * best, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2",
                        help="a packaged model name or a folder holding a sentence transformer")
    parser.add_argument("--data_path", type=Path, required=True, help="a GLUE-form folder: train.tsv and dev.tsv")
    parser.add_argument("--pca_dims", type=int, default=256)
    parser.add_argument("--output", type=Path, required=True, help="write the measurements to this JSON file")
    args = parser.parse_args(argv)
    try:
        from model2vec.distill import distill
    except ImportError as err:
        sys.exit(f"error: model2vec is not installed ({err}): pip install --no-deps model2vec==0.10.0 skeletoken==0.6.1")
    import torch

    from kd_bert.cli import or_exit
    from kd_bert.models.hub import resolve_model
    from kd_bert.train.precision import cpu_bf16_flags, cpu_name

    folder, _ = or_exit(resolve_model, args.model, "--model")
    start = time.perf_counter()
    static = distill(model_name=str(folder), pca_dims=args.pca_dims)
    distill_seconds = time.perf_counter() - start
    train_texts, train_labels = read(args.data_path / "train.tsv")
    dev_texts, dev_labels = read(args.data_path / "dev.tsv")
    latencies = []
    for text in dev_texts[:200]:
        start = time.perf_counter()
        static.encode([text])
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    dev_x = torch.tensor(static.encode(dev_texts, batch_size=64)).float()
    dev_per_second = len(dev_texts) / (time.perf_counter() - start)
    train_x = torch.tensor(static.encode(train_texts, batch_size=1024)).float()
    train_y, dev_y = torch.tensor(train_labels), torch.tensor(dev_labels)
    torch.manual_seed(0)
    width = train_x.shape[1]
    heads = {"linear": torch.nn.Linear(width, 2),
             "one hidden layer of 512": torch.nn.Sequential(torch.nn.Linear(width, 512), torch.nn.ReLU(),
                                                            torch.nn.Linear(512, 2))}
    result = {
        "model": args.model, "pca_dims": args.pca_dims, "vocabulary": len(static.tokens),
        "parameters": int(sum(v.numel() for v in [torch.as_tensor(static.embedding)])),
        "distill_seconds": round(distill_seconds, 1),
        "latency_p50_ms": round(1000 * statistics.median(latencies), 3),
        "dev_sentences_per_second_batch_64": round(dev_per_second),
        "best_dev_accuracy_over_20_epochs": {name: head_accuracy(h, train_x, train_y, dev_x, dev_y)
                                             for name, h in heads.items()},
        "train_sentences": len(train_texts), "dev_sentences": len(dev_texts),
        "cpu": cpu_name(), "native_bf16": bool(cpu_bf16_flags()), "precision": "fp32",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
