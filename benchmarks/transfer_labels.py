"""How right are the labels a few-labels student learns from? The teacher's labels on the transfer text,
checked against the gold labels that scripts/few_labels.py took away.

    python benchmarks/transfer_labels.py OUTPUT_DIR [--data ./data/sst2] [--json FILE]

OUTPUT_DIR is a finished `recipe.sh sst2-few` run. Its teacher's logits on OUTPUT_DIR/unlabeled.txt are read
from the teacher-logit cache that the distillation wrote (nothing is computed again); each sentence's gold
label is the one it has in DATA/train.tsv. Prints and writes (--json) the teacher's accuracy on the transfer
text, by how sure the teacher was, and the share of sentences whose gold label is ambiguous (the same text
with both labels in train.tsv).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def cached_logits(out: Path):
    """The cached teacher logits for OUTPUT_DIR/unlabeled.txt, found by the description beside them."""
    import torch

    from kd_bert.distillation.teacher_cache import logits_folder

    texts = str((out / "unlabeled.txt").resolve())
    teacher = str((out / "teacher").resolve())
    for described in sorted(logits_folder(None).glob("*.json")):
        about = json.loads(described.read_text(encoding="utf-8"))
        if about.get("data_path") == texts and about.get("teacher") == teacher:
            return torch.load(described.with_suffix(".pt"), weights_only=True)["logits"].float(), about
    sys.exit(f"error: no cached teacher logits for {texts}; run the recipe's distillation step first")


def gold_labels(data: Path) -> dict[str, set[int]]:
    labels: dict[str, set[int]] = {}
    with open(data / "train.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            labels.setdefault(row["sentence"], set()).add(int(row["label"]))
    return labels


def measure(out: Path, data: Path) -> dict:
    logits, about = cached_logits(out)
    texts = (out / "unlabeled.txt").read_text(encoding="utf-8").splitlines()
    if len(texts) != logits.shape[0]:
        sys.exit(f"error: {len(texts)} lines in unlabeled.txt, {logits.shape[0]} cached logits")
    gold = gold_labels(data)
    probs = logits.softmax(-1)
    sure, predicted = probs.max(-1)
    rows = [(texts[i], int(predicted[i]), float(sure[i])) for i in range(len(texts))]
    clear = [(t, p, s) for t, p, s in rows if len(gold[t]) == 1]
    right = [p in gold[t] for t, p, _ in clear]
    bands = []
    for low, high in ((0.5, 0.7), (0.7, 0.9), (0.9, 0.95), (0.95, 1.01)):
        inside = [p in gold[t] for t, p, s in clear if low <= s < high]
        bands.append({"confidence": f"{low:.2f}-{min(high, 1.0):.2f}", "sentences": len(inside),
                      "share": len(inside) / len(clear), "accuracy": sum(inside) / len(inside) if inside else None})
    return {"output_dir": str(out), "teacher": about["teacher"], "transfer_sentences": len(rows),
            "ambiguous_gold": len(rows) - len(clear), "teacher_accuracy": sum(right) / len(right), "by_confidence": bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "sst2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.out, args.data)
    print(f"teacher {result['teacher']} on {result['transfer_sentences']:,} transfer sentences: "
          f"{100 * result['teacher_accuracy']:.2f}% right ({result['ambiguous_gold']} with both gold labels left out)")
    for band in result["by_confidence"]:
        accuracy = "" if band["accuracy"] is None else f"{100 * band['accuracy']:.2f}% right"
        print(f"  confidence {band['confidence']}: {band['sentences']:,} sentences ({100 * band['share']:.1f}%) {accuracy}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
