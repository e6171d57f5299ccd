"""How long reading a training split takes: SST-2's train.tsv (67,349 rows) and a synthetic
1,000,000-line CSV with quoted fields, a few blank lines and bad rows, read as a training job reads
them (file -> columns -> checked texts and label ids), next to pandas.read_csv on the same file.

    python benchmarks/read_data.py [--rows 1000000] [--repeats 3]

Prints one line per file with the median of the repeats, and writes benchmarks/read_data.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kd_bert.config import DataConfig  # noqa: E402
from kd_bert.data.labels import infer_label_names
from kd_bert.data.splits import load_data, to_text_split  # noqa: E402
from kd_bert.task import Task  # noqa: E402

WORDS = ("good bad film plot actor slow fun dull great awful story scene music long short, witty "
         "\"quoted\" charming").split()


def synthetic_csv(path: Path, rows: int, seed: int = 0) -> int:
    """`rows` lines of text,label (quoted texts with commas), a blank line every 10,000 and a row with
    no label every 100,000; returns the number of bad rows."""
    rng = random.Random(seed)
    bad = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("text,label\n")
        for i in range(rows):
            if i % 10_000 == 9_999:
                f.write("\n")
            if i % 100_000 == 50_000:
                f.write("a row that lost its label\n")
                bad += 1
                continue
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))).replace('"', '""')
            f.write(f'"{text}",{rng.randint(0, 1)}\n')
    return bad


def read_split(path: Path) -> int:
    raw, columns = load_data(DataConfig(data_path=str(path), validation_split=0, on_bad_rows="skip"))
    names = infer_label_names(raw, columns, None)
    split = to_text_split(raw, "train", columns, Task.of(names), need_labels=True, required_by="")
    return len(split)


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import pandas as pd

    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "repeats": args.repeats}
    sst2 = REPO / "data" / "sst2" / "train.tsv"
    seconds, rows = median_seconds(lambda: read_split(sst2), args.repeats)
    results["sst2_train"] = {"rows": rows, "seconds": seconds}
    print(f"SST-2 train.tsv: {rows:,} rows in {seconds:.2f} s (median of {args.repeats})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        bad = synthetic_csv(path, args.rows)
        seconds, rows = median_seconds(lambda: read_split(path), args.repeats)
        pandas_seconds, frame = median_seconds(
            lambda: pd.read_csv(path, on_bad_lines="skip", skip_blank_lines=True), args.repeats)
        results["synthetic"] = {"lines": args.rows, "rows": rows, "bad_rows": bad, "seconds": seconds,
                                "pandas_read_csv_seconds": pandas_seconds, "pandas_rows": len(frame)}
        print(f"synthetic CSV: {args.rows:,} lines -> {rows:,} rows ({bad} bad rows dropped) in {seconds:.2f} s; "
              f"pandas.read_csv alone {pandas_seconds:.2f} s (median of {args.repeats})")
    (REPO / "benchmarks" / "read_data.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
