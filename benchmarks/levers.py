"""What makes distillation pay: each lever against the same student trained without the teacher.

    python benchmarks/levers.py --teacher ~/runs/recipe-sst2/teacher --out ~/runs/levers [--only NAME ...]

Every lever is one distilled-bert.py run of the same student (MiniLM-L6's first 3 layers unless
--student says otherwise) from the same teacher, on the full training set, seed --seed; the twin is the
same student from the same start trained on the gold labels alone. A run that finished (its student's
metrics.json has the run's total time) is skipped and one that stopped continues from its last checkpoint (every 500
batches), so the command continues where it stopped. The table
(levers.md, levers.json in --out, and in --results) is read from each run's metrics.json: the dev
accuracy of the kept model, computed from its predictions while it trained.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

# name: (what it tests, flags beyond the common ones). "twin" is the no-teacher baseline.
LEVERS = {
    "twin": ("no teacher: the gold labels alone", ["--alpha", "0"]),
    "kd": ("logit KD, alpha 0.5, T 2", []),
    "kd-aug1": ("KD + 1 perturbed copy per sentence (mask, swap, delete, n-gram)", ["--augment", "1"]),
    "kd-aug1-replace": ("KD + 1 copy with TinyBERT word replacement (p 0.4) from the teacher's table",
                        ["--augment", "1", "--augment_replace", "0.4"]),
    "kd-aug2-replace": ("KD + 2 copies with word replacement (p 0.4)", ["--augment", "2", "--augment_replace", "0.4"]),
    "kd-aug4-replace": ("KD + 4 copies with word replacement (p 0.4)", ["--augment", "4", "--augment_replace", "0.4"]),
    "kd-aug1-replace-alpha0.9": ("KD + 1 replaced copy, alpha 0.9",
                                 ["--augment", "1", "--augment_replace", "0.4", "--alpha", "0.9"]),
    "kd-aug1-replace-alpha1": ("KD + 1 replaced copy, alpha 1 (the teacher's soft labels alone)",
                               ["--augment", "1", "--augment_replace", "0.4", "--alpha", "1"]),
    "kd-aug1-replace-T1": ("KD + 1 replaced copy, temperature 1",
                           ["--augment", "1", "--augment_replace", "0.4", "--temperature", "1"]),
    "kd-aug1-replace-T4": ("KD + 1 replaced copy, temperature 4",
                           ["--augment", "1", "--augment_replace", "0.4", "--temperature", "4"]),
    # Hidden-state and attention terms need a student that shares the teacher's tokenizer (MPNet's own layers)
    # and the teacher online at every step.
    "kd-layers": ("KD + TinyBERT's hidden-state and attention MSE, weight 1 each",
                  ["--hidden_weight", "1", "--attention_weight", "1"]),
    "kd-aug1-replace-layers": ("KD + 1 replaced copy + hidden-state and attention MSE, weight 1 each",
                               ["--augment", "1", "--augment_replace", "0.4", "--hidden_weight", "1",
                                "--attention_weight", "1"]),
}


def machine() -> str:
    from kd_bert.train.precision import cpu_name
    return f"{cpu_name()}, {os.cpu_count()} cores"


def lever_flags(name: str, args: argparse.Namespace) -> list[str]:
    return ["--teacher_model", str(args.teacher), "--data_path", str(args.data), "--output_dir", str(args.out / name),
            "--student_model", args.student, *args.student_flags, "--num_train_epochs", str(args.epochs),
            "--learning_rate", str(args.learning_rate), "--seed", str(args.seed), "--eval_steps",
            str(args.eval_steps), "--checkpointing_steps", str(args.checkpointing_steps), "--save_total_limit", "1",
            *LEVERS[name][1]]


def start_flags(out: Path) -> list[str]:
    """A stopped lever continues from its last checkpoint, as recipe.sh's steps do; one with none starts over."""
    if any((out / "checkpoints").glob("*/step-*")):
        return ["--resume_from_checkpoint", "latest"]
    return ["--overwrite_output_dir"]


def _comparable(value):
    """A path that exists, resolved (the same folder given two ways is the same input); anything else as it is."""
    if isinstance(value, str) and os.sep in value and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def check_finished(names: list[str], args: argparse.Namespace) -> None:
    """A lever whose run finished counts only if it ran with this command's settings: one seed's, epochs' or
    teacher's run never stands in another's table. Checked for every lever before anything runs."""
    from recipe import MAY_DIFFER  # the flags a finished run may have had otherwise and still be this run

    parser = distill_parser()
    for name in names:
        record = args.out / name / "student" / "training_args.json"
        if finished(args.out / name) is None or not record.is_file():
            continue
        then = json.loads(record.read_text(encoding="utf-8"))["args"]
        now = vars(parser.parse_args(lever_flags(name, args)))
        differ = [f"--{k} {then[k]} then, {now[k]} now" for k in sorted(set(then) & set(now) - MAY_DIFFER)
                  if _comparable(then[k]) != _comparable(now[k])]
        if differ:
            print(f"error: lever {name} in {args.out} finished with other settings ({', '.join(differ[:3])}); "
                  f"give another --out, or the earlier values", file=sys.stderr)
            sys.exit(2)


def distill_parser() -> argparse.ArgumentParser:
    from kd_bert.commands import DISTILL  # distilled-bert.py's own parser

    return DISTILL.parser()


def finished(out: Path) -> dict | None:
    """The metrics of a lever's run that ended, else None. A run writes its best model, metrics.json included,
    at each evaluation that improves on the last; only the end of the run adds its total time (as recipe.py
    reads it)."""
    path = out / "student" / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    return metrics if "total_train_seconds" in metrics else None


def run(name: str, args: argparse.Namespace) -> dict | None:
    out = args.out / name
    if finished(out) is None:
        command = [sys.executable, "distilled-bert.py", *lever_flags(name, args), *start_flags(out)]
        print("$ " + shlex.join(command), flush=True)
        start = time.monotonic()
        code = subprocess.run(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
        if code != 0:
            print(f"lever {name} failed (exit {code})", file=sys.stderr)
            return None
        (out / "wall_seconds.txt").write_text(f"{time.monotonic() - start:.1f}\n")
    return done(name, args)


def done(name: str, args: argparse.Namespace) -> dict | None:
    """The row of a lever whose run finished; None otherwise."""
    out = args.out / name
    metrics = finished(out)
    if metrics is None:
        return None
    wall = out / "wall_seconds.txt"
    return {
        "lever": name, "what": LEVERS[name][0], "flags": " ".join(LEVERS[name][1]),
        "dev_accuracy": metrics["validation"]["accuracy"], "train_examples": metrics["train_examples"],
        "best_epoch": metrics["best_epoch"], "best_step": metrics.get("best_step"),
        "train_seconds": metrics["total_train_seconds"],
        "teacher_logits_seconds": (metrics.get("teacher_cache") or {}).get("seconds"),
        "teacher_logits_reused": (metrics.get("teacher_cache") or {}).get("reused"),
        "wall_seconds": float(wall.read_text()) if wall.is_file() else None,
        "mixed_precision": metrics.get("mixed_precision"),
    }


def table(rows: list[dict], header: dict) -> str:
    twin = next((r["dev_accuracy"] for r in rows if r["lever"] == "twin"), None)
    lines = [f"Student {header['student']} {' '.join(header['student_flags'])}, seed {header['seed']}, "
             f"{header['epochs']} epoch(s), learning rate {header['learning_rate']}; teacher {header['teacher']}; "
             f"{header['machine']}, precision {rows[0]['mixed_precision'] if rows else '?'}. SST-2 dev (872).",
             "", "| lever | flags | dev accuracy | minus the twin | examples | train s | teacher pass s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = "" if twin is None or r["lever"] == "twin" else f"{100 * (r['dev_accuracy'] - twin):+.2f}"
        teacher = "" if r["teacher_logits_seconds"] is None else (
            f"{r['teacher_logits_seconds']:.0f}" + (" (cached)" if r["teacher_logits_reused"] else ""))
        flags = f"`{r['flags']}`" if r["flags"] else "(none)"
        lines.append(f"| {r['lever']} | {flags} | {100 * r['dev_accuracy']:.2f} | {diff} | "
                     f"{r['train_examples']} | {r['train_seconds']:.0f} | {teacher} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "sst2")
    parser.add_argument("--student", default=MINILM)
    parser.add_argument("--student_flags", default="--student_init first_layers --student_layers 3")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval_steps", type=int, default=1000)
    parser.add_argument("--checkpointing_steps", type=int, default=500, help="a checkpoint every N batches (500)")
    parser.add_argument("--only", nargs="+", choices=list(LEVERS), default=list(LEVERS))
    parser.add_argument("--results", type=Path, default=None, help="also write levers.json and levers.md here")
    args = parser.parse_args()
    args.student_flags = shlex.split(args.student_flags)
    args.out = args.out.expanduser().resolve()
    for what, path in (("--teacher", args.teacher / "config.json"), ("--data", args.data / "train.tsv")):
        if not path.is_file():  # before the first lever, not in every one
            print(f"error: {what} {path.parent}: {path} is missing", file=sys.stderr)
            sys.exit(2)
    check_finished(args.only, args)
    args.out.mkdir(parents=True, exist_ok=True)
    header = {"student": args.student, "student_flags": args.student_flags, "seed": args.seed, "epochs": args.epochs,
              "learning_rate": args.learning_rate, "teacher": str(args.teacher), "machine": machine(),
              "command": shlex.join([sys.executable, *sys.argv])}
    failed = []
    for name in args.only:  # each run's table has every lever measured so far, asked for now or before
        if run(name, args) is None:
            failed.append(name)
        rows = [row for row in (done(n, args) for n in LEVERS) if row is not None]
        for folder in filter(None, (args.out, args.results)):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "levers.json").write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n")
            (folder / "levers.md").write_text(table(rows, header))
    print(table(rows, header))
    if failed:
        print(f"error: {len(failed)} lever(s) failed: {', '.join(failed)}; the table has the others", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
