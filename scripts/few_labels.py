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
import os
import random
import sys
from pathlib import Path

log = logging.getLogger("few_labels")


def split(data: Path, out: Path, labeled: int, unlabeled: int | None = None, seed: int = 0,
          overwrite: bool = False) -> tuple[Path, Path]:
    """(the labeled data folder, the unlabeled text file). Nothing is written until every check passed,
    and no file it writes is one it reads."""
    folder, texts = out / "data", out / "unlabeled.txt"
    train = data / "train.tsv"
    if not data.is_dir():
        fail(f"{data} is {'a file' if data.exists() else 'missing'}; give the GLUE-form data folder (train.tsv, "
             f"dev.tsv) as DATA")
    if not train.is_file():
        fail(f"{data} has no train.tsv; give the GLUE-form data folder (train.tsv, dev.tsv) as DATA")
    src, dst = data.resolve(), folder.resolve()
    if src == dst or src in dst.parents or dst in src.parents or src == out.resolve():
        fail(f"OUT_DIR {out} would write {folder}, over the data it reads ({data}); give another OUT_DIR")
    if unlabeled is not None and unlabeled < 0:
        fail(f"--unlabeled {unlabeled}: give 0 or more (or leave it out for all the rest)")
    existing = [p for p in (folder / "train.tsv", texts) if p.exists()]
    if existing and not overwrite:
        fail(f"{existing[0]} exists; give another OUT_DIR, or --overwrite to replace it")
    with open(train, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if len(lines) < 3:
        fail(f"{train} has {max(0, len(lines) - 1)} rows; few labels needs a header and at least 2 rows")
    header, *rows = lines
    if not 1 <= labeled < len(rows):
        fail(f"--labeled {labeled}: {train} has {len(rows)} rows; keep 1 to {len(rows) - 1}")
    random.Random(seed).shuffle(rows)
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "train.tsv", "".join("\t".join(r) + "\n" for r in [header, *rows[:labeled]]))
    for name in ("dev.tsv", "test.tsv", "labels.txt"):
        if (data / name).is_file():
            write(folder / name, (data / name).read_text(encoding="utf-8"))
    rest = rows[labeled:] if unlabeled is None else rows[labeled:labeled + unlabeled]
    write(texts, "".join(r[0] + "\n" for r in rest))
    log.info("%d labeled training sentences in %s, %d unlabeled in %s", labeled, folder / "train.tsv", len(rest), texts)
    return folder, texts


def fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def write(path: Path, text: str) -> None:
    """Through a temporary file and a rename: a reader sees the old file or the whole new one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--labeled", type=int, required=True)
    parser.add_argument("--unlabeled", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR's data and unlabeled.txt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    split(args.data, args.out, args.labeled, args.unlabeled, args.seed, args.overwrite)


if __name__ == "__main__":
    main()
