"""How fast the teacher's one pass over the training set runs, by batch size and precision.

    python benchmarks/teacher_pass.py --teacher ~/runs/recipe-sst2/teacher --data ./data/sst2 [--sentences 4096]

The pass distilled-bert.py makes (teacher_cache.py): sentences sorted by length, each batch padded to its
longest, torch.inference_mode, through the same Accelerate preparation (bf16 autocast where `auto` picks
it). Each setting runs over the same --sentences training sentences, the settings taking turns, --rounds
times; the median sentences/s of each is reported, with the largest difference of its logits from the
first setting's. Writes teacher_pass.json beside --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "sst2")
    parser.add_argument("--sentences", type=int, default=4096)
    parser.add_argument("--batch_sizes", default="32,64,128,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("teacher_pass.json"))
    args = parser.parse_args()

    import torch
    from accelerate import Accelerator

    from kd_bert.data.batching import MODEL, EncodedSplit, encode, eval_loader
    from kd_bert.train.precision import cpu_name
    from kd_bert.models.load import load_classifier, load_tokenizer
    from kd_bert.scoring.prediction import predict_logits
    from kd_bert.train.precision import resolve_precision

    with open(args.data / "train.tsv", encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f.read().splitlines()[1:]][: args.sentences]
    tokenizer = load_tokenizer(args.teacher, "--teacher")
    encoding = encode(tokenizer, texts, 128)
    split = EncodedSplit({MODEL: encoding}, None)
    precision = resolve_precision("auto")
    accelerator = Accelerator(mixed_precision=precision.mode, cpu=True)
    model = load_classifier(args.teacher, "--teacher", None)
    prepared = accelerator.prepare_model(model, evaluation_mode=True)
    settings = [(f"{precision.mode} (auto), batch {b}", prepared, int(b)) for b in args.batch_sizes.split(",")]
    if precision.mode == "bf16":  # the weights themselves in bf16, no autocast
        cast = load_classifier(args.teacher, "--teacher", None).to(torch.bfloat16).eval()  # not prepared: no autocast
        settings += [(f"bf16 weights, batch {b}", cast, int(b)) for b in args.batch_sizes.split(",")]
    speeds: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    logits: dict[str, torch.Tensor] = {}
    for _ in range(args.rounds):
        for name, net, batch in settings:  # the settings take turns, so a busy moment hits them alike
            start = time.perf_counter()
            out = predict_logits(net, eval_loader(split, batch), accelerator)
            speeds[name].append(len(texts) / (time.perf_counter() - start))
            logits.setdefault(name, torch.from_numpy(out))
    first = logits[settings[0][0]]
    rows = [{"setting": name, "sentences_per_s": statistics.median(speeds[name]), "runs": speeds[name],
             "max_logit_difference": float((logits[name] - first).abs().max())} for name, _, _ in settings]
    cpu = cpu_name()
    result = {"teacher": args.teacher, "sentences": len(texts), "rounds": args.rounds, "cpu": cpu,
              "cores": os.cpu_count(), "threads": torch.get_num_threads(), "precision": precision.mode,
              "command": " ".join(sys.argv), "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['setting']:<28} {row['sentences_per_s']:7.1f} sentences/s   max |logit difference| "
              f"{row['max_logit_difference']:.4f}")


if __name__ == "__main__":
    main()
