"""The sweep job (sweep.py): a search over distillation settings, as the steps a reader can follow in
sweep():

  1. read the space and check every end of it against the flags, and check the outputs, before
     anything loads;
  2. read the models' configs and the data: the layers a student can keep, the task (a regression
     task searches no temperature and compares by pearson), and the digests of what every trial reads;
  3. claim the output folder, and open the study (a database: made, or reopened to continue if its
     flags, space and digests are this command's), failing and queuing again any trial a killed
     process left unfinished;
  4. run trials until the study has --trials of them: each with settings no other trial has tried, a
     distillation into its own folder, on the training split less the selection split, kept and
     compared by its score on the selection split, pruned when an --eval_steps evaluation falls below
     the median of earlier trials';
  5. copy the best trial's student to <output_dir>/student, score it once on the validation split,
     and write best_config.yaml, which distilled-bert.py --config takes to repeat it.

Every trial reads the teacher's logits from the teacher-logit cache: the teacher runs once per
distinct transfer set (once, unless the transfer set itself is searched: --augment, --seed,
--max_train_samples), and every other trial costs what fine-tuning the student costs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import random
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..config import OBJECTIVES, DataConfig, DistillConfig, EvalConfig, SweepConfig, TrainConfig
from ..data.labels import has_scores, infer_label_names
from ..data.splits import load_data, load_unlabeled
from ..distillation.teacher_cache import weights_digest
from ..errors import UserError
from ..models.load import check_max_length, check_task, label_names_of, load_config, size_on_disk
from ..registries.student_kinds import kind_of
from ..models.students import num_layers_of, parse_first_layers, parse_layers
from ..deploy.model_card import model_card
from ..results import SweepResult
from ..safety.atomic import save_folder_atomically, write_json, write_text_atomically
from ..safety.outputs import check_outputs, claim_output
from ..safety.preflight import check_file, check_folder
from ..safety.stopping import Stopped, deferred
from ..scoring.metrics import is_better
from ..search import frontier, report
from ..search.space import STUDENT, Dimension, apply, check_space, every_setting, parse_space, size_of
from ..search.study import (
    ERROR,
    INTERRUPTED,
    REPEAT,
    STUDY_FILE,
    SURPLUS,
    check_storage,
    counted,
    heartbeat,
    open_study,
    optuna_module,
    owner,
    recover,
    requeue,
    storage_url,
    tried,
)
from ..task import Task
from .distill import (
    NO_TEACHER,
    check_distillation_outputs,
    check_sources,
    distill_trial,
    model_sources,
    plan_distillation,
)
from ..log import show

log = logging.getLogger(__name__)

SWEEP_FOLDER, TRIALS_FOLDER = "sweep", "trials"  # <output_dir>/sweep/trials/trial-NNN/student
BEST_CONFIG, SUMMARY = "best_config.yaml", "summary.json"
# What evaluate.py measures of a model's predictions, kept as the best student's validation score.
SCORES = ("accuracy", "f1", "precision", "recall", "average", "expected_calibration_error", "pearson", "spearman",
          "mse", "num_examples")
MAX_FAILURES = 3  # trials in a row whose run fails before the sweep gives up: the data or flags are wrong
MAX_REPEATS = 50  # draws in a row that repeat tried settings before the sweep gives up: the space is used up
LISTED = 100_000  # a space of at most this many settings is listed to find the untried ones
# Settings of a run that are not the run's own: where it writes, and whether it may.
NOT_REPEATED = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint")


class Pruned(Exception):
    """A trial stopped by the pruner after an evaluation."""


@dataclass
class Sweep:
    """What every trial of one sweep shares."""

    cfg: SweepConfig
    configs: tuple[DistillConfig, DataConfig, TrainConfig]
    dimensions: list[Dimension]
    folder: Path  # <output_dir>/sweep
    study: object
    metric: str
    bench: frontier.Bench | None = None  # --objectives accuracy,latency: what times each trial's student
    teacher: str | None = None  # the teacher the front is compared with

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def trial_dir(self, number: int) -> Path:
        return self.folder / TRIALS_FOLDER / f"trial-{number:03d}"


def sweep(cfg: SweepConfig, distill: DistillConfig, data: DataConfig, train: TrainConfig) -> SweepResult:
    """Search the settings of cfg.space over cfg.trials distillations compared on the selection split;
    the best student goes to <output_dir>/student, scored once on the validation split."""
    optuna_module()  # a missing Optuna fails before anything else
    dimensions = plan_sweep(cfg, distill, train)
    if cfg.frontier:
        dimensions = frontier_space(cfg, dimensions, distill)
    check_space(dimensions, distill, data, train, plan_distillation)
    plan = plan_distillation(distill, train)
    out = Path(train.output_dir)
    folder = out / SWEEP_FOLDER
    check_distillation_outputs(distill, plan, train, ["student"], data)
    check_folder(folder, f"the sweep folder {folder}")
    for name in ("trials.csv", BEST_CONFIG):
        check_file(folder / name, f"the sweep's {name}")
    check_sources(distill, plan)
    check_max_length(data.max_length, model_sources(distill, plan))
    check_layers(dimensions, distill, data, train)
    check_trials(cfg.trials, dimensions)
    task, depends_on = read_inputs(distill, data, train, dimensions)
    dimensions = space_for(task, dimensions, cfg)
    metric, _ = task.best_model_metric(train.metric_for_best_model)  # f1 for a score is refused here
    # The student folder of an earlier run of this sweep is the sweep's own, replaced by a better trial.
    resumed = (folder / STUDY_FILE).is_file() or (folder / "trials.csv").is_file()
    with claim_output(replace(train, overwrite_output_dir=train.overwrite_output_dir or resumed), ["student"]):
        return _sweep(cfg, distill, data, train, dimensions, folder, metric, depends_on, task)


def plan_sweep(cfg: SweepConfig, distill: DistillConfig, train: TrainConfig) -> list[Dimension]:
    """The space, and the flags a sweep cannot take, refused before anything loads."""
    if not train.selection_split:
        raise UserError("a sweep compares its trials on a selection split held out of the training data, never on the "
                        "validation split it reports; pass --selection_split above 0 (sweep.py's default is 0.1)")
    if distill.compare_no_kd:
        raise UserError("--compare_no_kd trains a second student in every trial; sweep first, then run "
                        "distilled-bert.py --config <output_dir>/sweep/best_config.yaml --compare_no_kd")
    if train.checkpointing_steps or train.resume_from_checkpoint:
        raise UserError("a sweep reruns an interrupted trial from its start and keeps its study in a database, so "
                        "--checkpointing_steps and --resume_from_checkpoint do not apply; run the same command again "
                        "to continue a sweep")
    check_storage(cfg.storage)
    return parse_space(cfg.space)


def frontier_space(cfg: SweepConfig, dimensions: list[Dimension], distill: DistillConfig) -> list[Dimension]:
    """--objectives accuracy,latency: a space without the student's kind and size would time one student
    over and over. Without --search, the default space also searches student=: the first 1 to all layers of
    --student_model, the BiLSTM and (where model2vec is installed) the static-embedding student; with a
    --search that leaves the student out, the log says so."""
    if any(d.name in (STUDENT, "student_layers", "student_init", "student_model") for d in dimensions):
        return dimensions
    if cfg.search:
        log.warning("--objectives accuracy,latency with a --search that leaves the student alone: every trial's "
                    "student has the same size; add e.g. student=first_layers:1,first_layers:3,bilstm")
        return dimensions
    kind = kind_of(distill)
    choices = ["bilstm"]
    if kind.starts_from == "student_model":
        layers = num_layers_of(load_config(distill.student_model, "--student_model"))
        choices = [f"first_layers:{n}" for n in range(1, layers + 1)] + choices
        if importlib.util.find_spec("model2vec") is not None:
            choices.append("static")
    if len(choices) < 2:
        return dimensions
    return [*dimensions, *parse_space([f"{STUDENT}={','.join(choices)}"])]


def check_trials(trials: int, dimensions: list[Dimension]) -> None:
    """--trials against a space of few settings (choices and whole numbers): no trial repeats another's."""
    size = size_of(dimensions)
    if size is not None and trials > size:
        raise UserError(f"--trials {trials} is more than the {size} settings the space holds "
                        f"({' '.join(d.describe() for d in dimensions)}), and no trial repeats another's settings; "
                        f"pass --trials {size}, or widen --search")


def read_inputs(distill: DistillConfig, data: DataConfig, train: TrainConfig,
                dimensions: list[Dimension]) -> tuple[Task, dict]:
    """The task, from the teacher's labels when a trial runs it (else the data's), checked against the
    data's; and the digests of what every trial reads: the data as read (and the transfer data), the
    teacher's weights when a trial uses it, as the teacher-logit cache digests them, and the weights of the
    checkpoint the student starts from (--student_model), when a trial's student starts from one."""
    raw, columns = load_data(data)
    variants = [(distill, data, train)] + [apply({d.name: value}, distill, data, train) for d in dimensions
                                           for value in d.values_to_check()]
    uses_teacher = any(plan_distillation(v[0], v[2]).teacher_use != NO_TEACHER for v in variants)
    students = sorted({v[0].student_model for v in variants if kind_of(v[0]).starts_from == "student_model"})
    texts = [raw.label_names or []]
    for name in sorted(raw.splits):
        split = raw.splits[name].columns
        texts += [[f"{name}/{column}", *split[column]] for column in (columns.text, columns.pair, columns.label)
                  if column in split]
    depends_on = {"data": _digest(texts)}
    if distill.transfer_data:
        unlabeled = load_unlabeled(distill.transfer_data, columns, data.on_bad_rows)
        depends_on["transfer_data"] = _digest([unlabeled.texts, unlabeled.pairs or []])
    if students:  # the checkpoint a trial's student starts from, retrained or replaced in its folder
        depends_on["student"] = _digest([[name, weights_digest(name, None)] for name in students])
    if not uses_teacher:
        return Task.of(infer_label_names(raw, columns, data.label_names)), depends_on
    config = load_config(distill.teacher_model, "--teacher_model")
    label_names = label_names_of(config)
    check_task(label_names, has_scores(raw, columns), f"the teacher {distill.teacher_model}", data.data_path)
    depends_on["teacher"] = weights_digest(distill.teacher_model, config)
    return Task.of(label_names), depends_on


def _digest(columns: list[list]) -> str:
    """A digest of lists of values (JSON keeps each list and value apart, so no other lists give it)."""
    return hashlib.sha256(json.dumps(columns, default=str).encode("utf-8")).hexdigest()


def space_for(task: Task, dimensions: list[Dimension], cfg: SweepConfig) -> list[Dimension]:
    """The space as the task reads it: the settings its KD term never reads (Task.unused_settings: a
    regression task's KD term is the MSE between two scores, which reads neither temperature nor kd_loss)
    are left out of the default space, and --search refuses them."""
    idle = [d.name for d in dimensions if d.name in task.unused_settings]
    if idle and cfg.search:
        raise UserError(f"--search {idle[0]}: {task.unused_setting(idle[0])}; leave it out of --search")
    return [d for d in dimensions if d.name not in task.unused_settings]


def check_layers(dimensions: list[Dimension], distill: DistillConfig, data: DataConfig, train: TrainConfig) -> None:
    """--student_layers, as given or searched, against the model whose layers the student keeps (the
    teacher's for teacher_layers, --student_model's for first_layers), read from its config: a count or
    a layer that model has not fails now, not in every trial that draws it."""
    searched = [d for d in dimensions if d.name in ("student_layers", "student_init", STUDENT)]
    names = [d.name for d in searched]
    for values in itertools.product(*(d.values_to_check() for d in searched)):
        variant = apply(dict(zip(names, values)), distill, data, train)[0]
        kind, spec = kind_of(variant), variant.student_layers
        if not kind.takes_layers or not spec:
            continue
        source = kind.source(variant)
        whose = "the teacher" if kind.starts_from == "teacher_model" else source
        try:
            parse = parse_layers if kind.copies_teacher else parse_first_layers
            parse(spec, num_layers_of(load_config(source, f"--{kind.starts_from}")), whose)
        except UserError as exc:
            shown = " ".join(f"{name}={value}" for name, value in zip(names, values))
            raise UserError(f"--search {shown}: {exc}" if shown else str(exc)) from None


def _sweep(cfg: SweepConfig, distill: DistillConfig, data: DataConfig, train: TrainConfig,
           dimensions: list[Dimension], folder: Path, metric: str, depends_on: dict, task: Task) -> SweepResult:
    started = time.perf_counter()
    maximize = metric not in ("loss", "mse")
    direction = "maximize" if maximize else "minimize"
    shared_settings = {**distill.to_flags(), **data.to_flags(), **train.to_flags()}
    for name in (*NOT_REPEATED, "report_to", "cache_dir"):  # where things go, not what the trials compute
        shared_settings.pop(name, None)
    settings = {"space": [d.describe() for d in dimensions], "flags": _plain(shared_settings)}
    if cfg.frontier:  # recorded only then: a study made before --objectives existed continues as it was
        settings["objectives"] = list(OBJECTIVES)
    url = storage_url(cfg.storage, folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        study = open_study(url, cfg.study_name, [direction, "minimize"] if cfg.frontier else direction, settings,
                           cfg.trials, train.seed, cfg.pruning,
                           shared=cfg.storage is not None, depends_on=depends_on)
    except BaseException:  # a --storage that cannot be opened, say: a refused sweep leaves no folder behind
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    # The metric as the task reads it: a regression task's accuracy is pearson.
    run = Sweep(cfg, (distill, data, train), dimensions, folder, study, metric)
    if cfg.frontier:
        run.bench = frontier.Bench(data, train, list(task.label_names), metric, maximize, cfg.timing_samples,
                                   onnx=onnx_installed())
        run.teacher = distill.teacher_model if "teacher" in depends_on else None
    lost = recover(study)
    if lost:
        log.info(f"trial(s) {', '.join(map(str, lost))} of an earlier run never finished; their settings run again")
    done, _ = counted(study)
    log.info(f"sweep: {cfg.trials} trials over {' '.join(d.describe() for d in dimensions)}"
             f"{f', {done} done already' if done else ''}; compared by {metric} on the selection split "
             f"({train.selection_split:.0%} of the training examples); study {cfg.study_name} in {url}")
    failures = repeats = 0
    while True:
        done, running = counted(study)
        if done + len(running) >= cfg.trials:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna warns that heartbeats are meant for its own loop; see study.py
            trial = study.ask()
        if not _claimed(run, trial):
            break
        params = draw(run, trial)
        if params is None:
            repeats += 1
            if repeats >= MAX_REPEATS:
                raise UserError(f"{MAX_REPEATS} draws in a row gave settings that trials of this study have already "
                                f"tried: the space has few left; widen --search, or lower --trials")
            continue
        repeats = 0
        try:
            failed = run_trial(run, trial, params)
        except Stopped as stop:
            log.warning("the sweep stopped; its finished trials are kept in the study, and running the same command "
                        "again continues it")
            raise Stopped(stop.signum, announce=stop.announce) from None  # not a checkpoint to resume from
        failures = failures + 1 if failed else 0
        if failures >= MAX_FAILURES:
            raise UserError(f"{MAX_FAILURES} trials in a row failed, the last with: {failed}; see "
                            f"{folder / 'trials.md'}")
    return finish(run, time.perf_counter() - started)


def _claimed(run: Sweep, trial) -> bool:
    """Whether this process may run `trial`: two processes can ask for the study's last place at once, and
    then only the one with the lower trial number runs; the other's is marked surplus and never runs."""
    from optuna.trial import TrialState

    trial.set_user_attr("owner", owner())
    done, running = counted(run.study)
    if trial.number in running[:max(run.cfg.trials - done, 0)]:
        return True
    trial.set_user_attr("failure", SURPLUS)
    run.study.tell(trial, state=TrialState.FAIL)
    return False


def draw(run: Sweep, trial) -> dict | None:
    """The trial's settings; None when they are those of a trial already tried or running (a rerun of an
    interrupted trial alone takes its settings again): the trial is then told as a repeat and never runs,
    and, for a space whose settings can be listed, one untried is queued for the next trial."""
    from optuna.trial import TrialState

    params = {d.name: d.suggest(trial) for d in run.dimensions}
    if trial.user_attrs.get("rerun_of") is not None:
        return params
    seen = tried(run.study, trial.number)
    if params not in seen:
        return params
    trial.set_user_attr("failure", REPEAT)
    run.study.tell(trial, state=TrialState.FAIL)
    size = size_of(run.dimensions)
    if size is not None and size <= LISTED:
        untried = [setting for setting in every_setting(run.dimensions) if setting not in seen]
        if untried:
            run.study.enqueue_trial(random.Random(trial.number).choice(untried))
    return None


def run_trial(run: Sweep, trial, params: dict) -> str | None:
    """One trial with its drawn settings: a distillation into its own folder, the study told how it ended.
    Returns the error of a trial whose run failed (None otherwise)."""
    from optuna.trial import TrialState

    trial_dir = run.trial_dir(trial.number)
    shutil.rmtree(trial_dir, ignore_errors=True)  # an interrupted attempt's leftovers
    distill, data, train = run.configs
    train = replace(train, output_dir=str(trial_dir), overwrite_output_dir=True, report_to=["none"])
    configs = apply(params, distill, data, train)
    seen = {"steps": 0, "best": None}

    def on_evaluation(step: int, value: float) -> None:
        seen["steps"] = step
        if seen["best"] is None or is_better(run.metric, value, seen["best"]):
            seen["best"] = value
        if run.bench is None:  # Optuna prunes no trial of a multi-objective study
            trial.report(value, step)
            if trial.should_prune():
                raise Pruned(f"pruned at update {step}")

    start = time.perf_counter()
    state, error, points = TrialState.COMPLETE, None, []
    try:
        with heartbeat(run.study, trial):
            distill_trial(*configs, on_evaluation)
            if run.bench is not None and seen["best"] is not None:  # timed as each way to ship it
                points = frontier.trial_points(run.bench, trial.number, trial_dir, student_of(params, configs[0]),
                                               seen["best"], configs[2])
    except Pruned:
        state = TrialState.PRUNED
    except UserError as exc:  # its loss became nan, say: the trial failed, the sweep goes on
        state, error = TrialState.FAIL, str(exc)
        trial.set_user_attr("failure", ERROR)
        trial.set_user_attr("message", error[:300])
    except BaseException as exc:  # a signal, or a crash: the trial runs again when the sweep does
        trial.set_user_attr("failure", INTERRUPTED)
        run.study.tell(trial, state=TrialState.FAIL)
        requeue(run.study, run.study.get_trials(deepcopy=False)[trial.number])
        shutil.rmtree(trial_dir, ignore_errors=True)
        write_outputs(run)
        log.warning(f"trial {trial.number} was interrupted; it runs again, with the same settings, when the sweep "
                    f"does")
        raise
    # A signal from here on waits until the trial is recorded, then stops the sweep between two trials.
    with deferred(announce=False):
        seconds = time.perf_counter() - start
        record_run(run, trial, trial_dir / "student")
        for key, value in (("score", seen["best"]), ("steps", seen["steps"]), ("seconds", seconds)):
            trial.set_user_attr(key, value)
        if run.bench is None:
            run.study.tell(trial, seen["best"] if state == TrialState.COMPLETE else None, state=state)
            keep_if_best(run, trial.number, state == TrialState.COMPLETE and seen["best"] is not None)
        else:
            tell_point(run, trial, state, points)
        table = write_outputs(run)
        row = next(r for r in table if r["trial"] == trial.number)
        row["done"] = counted(run.study)[0]
        log.info(report.progress_line(row, run.names, run.cfg.trials, run.metric, best_row(run, table)))
        if error is not None:
            log.warning(f"trial {trial.number} failed: {error}")
    return error


def student_of(params: dict, distill: DistillConfig) -> str:
    """The trial's student as the frontier names it: its student= choice, or its kind and layers."""
    if STUDENT in params:
        return params[STUDENT]
    kind = kind_of(apply(params, distill, DataConfig(), TrainConfig())[0] if params else distill)
    layers = params.get("student_layers", distill.student_layers)
    return f"{kind.name}:{layers}" if kind.takes_layers and layers else kind.name


def tell_point(run: Sweep, trial, state, points: list[frontier.Point]) -> None:
    """A multi-objective trial told with its selection score and its PyTorch point's batch-1 latency (its
    ONNX int8 point is kept beside, for the front); then only the students with a point on the front of
    this folder's trials, as timed so far, stay on disk."""
    from optuna.trial import TrialState

    if state == TrialState.COMPLETE and points:
        trial.set_user_attr("points", [p.as_dict() for p in points])
        run.study.tell(trial, [trial.user_attrs["score"], points[0].p50_ms])
    elif state == TrialState.COMPLETE:  # no evaluation scored it: nothing to place on the front
        trial.set_user_attr("failure", ERROR)
        trial.set_user_attr("message", "no score on the selection split")
        run.study.tell(trial, state=TrialState.FAIL)
    else:
        run.study.tell(trial, state=state)
    # The front of the trials this folder holds: with --storage shared by several machines, each keeps its own.
    here = set(kept_trials(run)) | {trial.number}
    points = [p for p in frontier.points_of(run.study.get_trials(deepcopy=False)) if p.trial in here]
    on_front = {p.trial for p in frontier.pareto(points)}
    for n in here:
        if n not in on_front:
            shutil.rmtree(run.trial_dir(n), ignore_errors=True)


def onnx_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def record_run(run: Sweep, trial, student: Path) -> None:
    """From the metrics.json of the trial's kept model (a pruned trial's too: it kept a model at its first
    evaluation): whether the trial paid for the teacher's pass and what it cost, and the metric its scores
    are, as the task read --metric_for_best_model."""
    import json

    metrics = student / "metrics.json"
    doc = json.loads(metrics.read_text()) if metrics.is_file() else {}
    metric = doc.get("metric_for_best_model")
    if metric and metric != run.metric:
        run.metric = metric
        run.study.set_user_attr("metric", metric)
    cache = doc.get("teacher_cache")
    if cache:
        trial.set_user_attr("teacher_logits", "reused" if cache["reused"] else "computed")
        trial.set_user_attr("teacher_seconds", 0.0 if cache["reused"] else cache["seconds"])


def kept_trials(run: Sweep) -> list[int]:
    """The trials whose student this output folder keeps (the best complete one, after each trial)."""
    root = run.folder / TRIALS_FOLDER
    return sorted(int(p.name.removeprefix("trial-")) for p in root.glob("trial-*") if (p / "student").is_dir()) \
        if root.is_dir() else []


def keep_if_best(run: Sweep, number: int, complete: bool) -> None:
    """Keep the student of trial `number` if it is the best complete trial this folder has, and only that:
    a sweep's disk use is one student, whatever the number of trials."""
    scores = {t.number: t.value for t in run.study.get_trials(deepcopy=False)
              if t.number in kept_trials(run) and t.value is not None and report.state_of(t) == "complete"}
    best = None
    for n, value in sorted(scores.items()):
        if best is None or is_better(run.metric, value, scores[best]):
            best = n
    for n in kept_trials(run):
        if n != best:
            shutil.rmtree(run.trial_dir(n), ignore_errors=True)
    if not complete and number != best:
        shutil.rmtree(run.trial_dir(number), ignore_errors=True)


def best_row(run: Sweep, table: list[dict]) -> dict | None:
    """The kept complete trial with the best selection score (the front keeps several)."""
    kept = set(kept_trials(run))
    best = None
    for row in table:
        if row["trial"] in kept and row["state"] == "complete" and row["score"] is not None and (
                best is None or is_better(run.metric, row["score"], best["score"])):
            best = row
    return best


def write_outputs(run: Sweep) -> list[dict]:
    """trials.csv, trials.md and the charts, from the study as it is now."""
    table = report.rows(run.study.get_trials(deepcopy=False), run.names)
    report.write_tables(run.folder, table, run.names, run.metric, points=run.bench is not None)
    report.charts(run.folder, table, run.names, {d.name for d in run.dimensions if d.log}, run.metric,
                  maximize=run.metric not in ("loss", "mse"))
    return table


def finish(run: Sweep, seconds: float) -> SweepResult:
    """The best trial's student in <output_dir>/student, scored once on the validation split; its
    settings in best_config.yaml; the summary."""
    from .evaluate import evaluate  # the scoring job that evaluate.py runs

    table = write_outputs(run)
    best = best_row(run, table)
    distill, data, train = run.configs
    if best is None:
        failed = [r for r in table if r["state"] == "failed"]
        last = f", the last with: {failed[-1]['note']}" if failed else ""
        raise UserError(f"no trial of this sweep finished ({len(failed)} of its {len(table)} failed{last}); nothing "
                        f"to keep; see {run.folder / 'trials.md'}")
    chosen, why, front = None, "", None
    if run.bench is not None:
        chosen, why, front = choose_from_front(run, best)
    number = chosen.trial if chosen is not None else best["trial"]
    best = next(r for r in table if r["trial"] == number)
    trial = run.study.get_trials(deepcopy=False)[number]
    source = run.trial_dir(number) / "student"
    final = Path(train.output_dir) / "student"

    def copy(tmp: Path) -> None:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if chosen is not None and chosen.format == frontier.ONNX_INT8:  # shipped as ONNX int8: its folder beside
            shutil.copytree(run.trial_dir(number) / frontier.INT8_FOLDER, tmp / frontier.INT8_FOLDER)

    save_folder_atomically(final, copy)
    scored = evaluate(EvalConfig(model=str(final), latency_samples=0, split="validation",
                                 batch_size=train.eval_batch_size, mixed_precision=train.mixed_precision), data)
    validation = {k: v for k, v in scored.metrics.items() if k in SCORES}
    record_validation(final, validation, why)
    repeat = best_config(run, trial.params)
    summary = {
        "best_trial": best["trial"], "settings": trial.params, f"selection_{run.metric}": best["score"],
        "selected_on": f"the selection split: {train.selection_split:.0%} of the training examples, held out of "
                       f"every trial's training", "validation": validation,
        "measured_on": "the validation split, scored once, with the best trial's student alone",
        "trials": {state: sum(r["state"] == state for r in table) for state in
                   ("complete", "pruned", "failed", "interrupted")},
        "sweep_seconds": seconds,
        "trial_seconds": sum(r["seconds"] or 0 for r in table if r["state"] != "interrupted"),
    }
    if front is not None:
        summary["frontier"] = {"front": [p.as_dict() for p in front], "chosen": chosen.as_dict() if chosen else None,
                               "why": why, "files": ["frontier.md", "frontier.csv", "frontier.json", "frontier.png"]}
    write_json(run.folder / SUMMARY, summary)
    shown = ", ".join(f"{name} {validation[name]:.4f}" for name in ("accuracy", "f1", "pearson", "spearman", "mse")
                      if isinstance(validation.get(name), float))
    show(log, f"best: trial {best['trial']} ({', '.join(f'{k} {report.shown(v)}' for k, v in trial.params.items())}), "
              f"selection {run.metric} {best['score']:.4f}; its student, copied to {final}, scores {shown} on the "
              f"validation split (measured once, after the choice); repeat it with: python distilled-bert.py "
              f"--config {repeat} --output_dir DIR")
    return SweepResult(final, repeat, run.folder / "trials.csv", table, best["trial"], trial.params, best["score"],
                       validation)


def choose_from_front(run: Sweep, best: dict) -> tuple[frontier.Point | None, str, list[frontier.Point]]:
    """The front timed again together with the teacher, written out (frontier.md, .csv, .json, .png), and the
    point kept: with --max_drop, the fastest within that many points of the teacher's validation score;
    otherwise the trial with the best selection score. Returns (the point, why it was kept, the front)."""
    cfg, bench = run.cfg, run.bench
    every = frontier.points_of(run.study.get_trials(deepcopy=False))
    running = frontier.pareto(every)
    candidates = [(p, run.trial_dir(p.trial) / ("student" if p.format == frontier.PYTORCH else frontier.INT8_FOLDER))
                  for p in running]
    # With --storage shared by several machines, each holds the students of the trials it ran: the front's others
    # keep the timing their own machine gave them, and only this machine's can be kept here.
    elsewhere = [p for p, folder in candidates if not folder.is_dir()]
    candidates = [(p, folder) for p, folder in candidates if folder.is_dir()]
    log.info(f"timing the {len(candidates)} students of the front and the teacher again together, "
             f"{cfg.timing_rounds} rounds in turns" + (f" ({len(elsewhere)} more ran on other machines)"
                                                        if elsewhere else ""))
    retimed, teacher = frontier.retime(bench, candidates, run.teacher, cfg.timing_rounds, run.configs[2])
    again = {p.key: p for p in retimed}
    every = [again.get(p.key, p) for p in every]
    front = frontier.pareto(retimed + elsewhere)
    chosen, why = None, ""
    if cfg.max_drop is not None:
        if teacher is None or teacher.validation is None:
            raise UserError("--max_drop compares each student with the teacher's validation score, and this sweep "
                            "has no teacher or no labeled validation split; leave --max_drop out")
        chosen = frontier.choose([p for p in front if p.retimed], teacher.validation, cfg.max_drop)
        floor = f"{100 * teacher.validation:.2f} - {cfg.max_drop:g} = {100 * teacher.validation - cfg.max_drop:.2f}"
        if chosen is None:
            why = (f"No student of the front scored within {cfg.max_drop:g} points of the teacher's validation "
                   f"{run.metric} ({floor}); kept instead: trial {best['trial']}, the best on the selection split.")
            log.warning(why)
        else:
            why = (f"Kept by --max_drop {cfg.max_drop:g}: trial {chosen.trial} as {chosen.format} is the fastest "
                   f"student of the accuracy-speed front whose validation {run.metric} "
                   f"({100 * chosen.validation:.2f}) is at least the teacher's less {cfg.max_drop:g} points "
                   f"({floor}): {chosen.p50_ms:.2f} ms at batch 1 against the teacher's {teacher.p50_ms:.2f} ms "
                   f"({teacher.p50_ms / chosen.p50_ms:.1f}x faster), timed again together in {cfg.timing_rounds} "
                   f"rounds.")
            if chosen.format == frontier.ONNX_INT8:
                why += (f" It ships as ONNX int8: the folder {frontier.INT8_FOLDER}/ inside this one "
                        f"(python evaluate.py --model <this folder>/{frontier.INT8_FOLDER} serves it).")
    else:
        why = (f"Kept: trial {best['trial']}, the best {run.metric} on the selection split; pass --max_drop X to "
               f"keep the fastest student within X points of the teacher instead.")
    frontier.write(run.folder, every, front, teacher, bench, cfg.timing_rounds, chosen, why)
    return chosen, why, front


def record_validation(folder: Path, validation: dict, why: str = "") -> None:
    """The kept model's one validation score, into its metrics.json and model card (with why it was kept)."""
    import json

    doc = json.loads((folder / "metrics.json").read_text())
    doc["validation"] = validation
    write_json(folder / "metrics.json", doc)
    args = json.loads((folder / "training_args.json").read_text())["args"]
    card = model_card("student", args, doc, doc.get("objective"), size_on_disk(folder))
    if why:
        card = card.rstrip("\n") + f"\n\n## Why this student\n\n{why}\n"
    write_text_atomically(folder / "README.md", card)


def best_config(run: Sweep, params: dict) -> Path:
    """best_config.yaml: every distilled-bert.py flag of the best trial but where it writes."""
    distill, data, train = apply(params, *run.configs)
    flags = {**distill.to_flags(), **data.to_flags(), **train.to_flags()}
    for name in NOT_REPEATED:
        flags.pop(name, None)
    path = run.folder / BEST_CONFIG
    header = (f"# The best trial ({', '.join(f'{k} {report.shown(v)}' for k, v in params.items())}) of the sweep in "
              f"{run.folder}.\n# python distilled-bert.py --config {path} --output_dir DIR repeats it: the same rows, "
              f"the same selection split, the same seed.\n")
    write_text_atomically(path, header + yaml.safe_dump(_plain(flags), sort_keys=False))
    return path


def _plain(flags: dict) -> dict:
    """Values as YAML and JSON write them: a default kept as a number subclass becomes a plain float."""
    return {k: float(v) if isinstance(v, float) else v for k, v in flags.items()}
