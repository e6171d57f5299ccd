"""What the checks before a run cost: the path preflight of a distillation with --compare_no_kd and
checkpoints (output folder, two model folders, their checkpoint folders, the comparison file), then
taking and releasing the output folder's lock with the overwrite guard, as a run does at its start.

    python benchmarks/preflight_cost.py [--repeats 200]

Prints the median and the 95th percentile in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kd_bert.config import TrainConfig  # noqa: E402
from kd_bert.safety.outputs import check_outputs, claim_output  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train = TrainConfig(output_dir=str(Path(tmp) / "models"), checkpointing_steps="epoch")
        roles = ["student", "student_no_kd"]
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            check_outputs(train, roles, {"the comparison file": Path(train.output_dir) / "kd_vs_no_kd.json"})
            with claim_output(train, roles):
                pass
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"preflight + lock + overwrite guard: median {statistics.median(times):.2f} ms, "
          f"p95 {times[int(0.95 * len(times))]:.2f} ms over {args.repeats} runs")


if __name__ == "__main__":
    main()
