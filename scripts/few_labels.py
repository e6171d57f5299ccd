"""Keep the labels of a few training sentences and give the rest as plain text (the few-labels recipe).

    python scripts/few_labels.py DATA_DIR OUT_DIR --labeled 2000 [--unlabeled N] [--seed 0]

DATA_DIR is a GLUE-form folder: train.tsv (a header, then text and label columns), dev.tsv, test.tsv
and labels.txt. Its training rows are shuffled with --seed; the first --labeled keep their labels in
OUT_DIR/data/train.tsv, beside copies of the other files, and the next --unlabeled (default: all the
rest) go to OUT_DIR/unlabeled.txt, one sentence per line, without their labels. The shuffle does not
depend on --labeled, so 500 labeled sentences are the first 500 of the 2,000.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import shutil
from pathlib import Path

log = logging.getLogger("few_labels")


def split(data: Path, out: Path, labeled: int, unlabeled: int | None = None, seed: int = 0) -> tuple[Path, Path]:
    """(the labeled data folder, the unlabeled text file)."""
    with open(data / "train.tsv", newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not 1 <= labeled < len(rows):
        raise SystemExit(f"error: --labeled {labeled}: {data / 'train.tsv'} has {len(rows)} rows; keep 1 to {len(rows) - 1}")
    random.Random(seed).shuffle(rows)
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_text("".join("\t".join(r) + "\n" for r in [header, *rows[:labeled]]), encoding="utf-8")
    for name in ("dev.tsv", "test.tsv", "labels.txt"):
        if (data / name).is_file():
            shutil.copyfile(data / name, folder / name)
    rest = rows[labeled:] if unlabeled is None else rows[labeled:labeled + unlabeled]
    texts = out / "unlabeled.txt"
    texts.write_text("".join(r[0] + "\n" for r in rest), encoding="utf-8")
    log.info("%d labeled training sentences in %s, %d unlabeled in %s", labeled, folder / "train.tsv", len(rest), texts)
    return folder, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--labeled", type=int, required=True)
    parser.add_argument("--unlabeled", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    split(args.data, args.out, args.labeled, args.unlabeled, args.seed)


if __name__ == "__main__":
    main()
