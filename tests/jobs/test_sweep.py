"""sweep.py as a user runs it: trials compared on a selection split carved from train, the best student
scored once on validation, the teacher run once for the whole sweep, pruning, a killed or stopped sweep
continued by the same command with new settings, two processes on one study, a continuation refused when
its flags, data or teacher changed, a regression sweep, and the config that repeats the best trial."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import (
    REPO,
    SST2,
    assert_clean_failure,
    dev_texts,
    independent_predictions,
    nudged_copy,
    read_tsv,
    run_script,
    snapshot,
    write_tsv,
)

pytest.importorskip("optuna")

# Every sweep here: the tiny student on the 320 sentences of the slice, 80 of them held out as the selection
# split, evaluated every 5 updates, in fp32.
TRIAL = ["--num_train_epochs", "2", "--batch_size", "16", "--max_length", "64", "--selection_split", "0.25",
         "--eval_steps", "5", "--mixed_precision", "no", "--report_to", "none"]
SPACE = ["--search", "alpha=0.1:1.0", "temperature=1:8", "learning_rate=1e-4:3e-3:log"]


def sweep_args(sst2_slice, teacher, tiny_models, out, *extra):
    return ["--data_path", sst2_slice, "--teacher_model", teacher, "--student_model", tiny_models["student_base"],
            "--output_dir", out, *TRIAL, *extra]


def trials_of(out) -> list[dict]:
    with open(out / "sweep" / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def dev_accuracy(model, sst2_slice) -> float:
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    predictions = independent_predictions(model, [r[0] for r in rows])
    return sum(p == int(r[1]) for p, r in zip(predictions, rows)) / len(rows)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """A 4-trial sweep over alpha, temperature and the learning rate, pruning on."""
    out = tmp_path_factory.mktemp("sweep")
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--trials", "4",
                        *SPACE)
    assert result.returncode == 0, result
    return out, result


def test_sweep_writes_every_trial_and_keeps_the_best_student(swept, sst2_slice):
    out, result = swept
    trials = trials_of(out)
    assert [int(t["trial"]) for t in trials] == [0, 1, 2, 3]
    for t in trials:
        assert 0.1 <= float(t["alpha"]) <= 1.0 and 1 <= float(t["temperature"]) <= 8
        assert 1e-4 <= float(t["learning_rate"]) <= 3e-3
        assert t["state"] in ("complete", "pruned") and int(t["steps"]) > 0 and float(t["seconds"]) > 0
    assert len({t["alpha"] for t in trials}) == 4  # drawn, not one setting four times
    # One progress line per trial, naming its settings and score.
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4 and all("selection accuracy" in line for line in lines), result.stdout
    complete = [t for t in trials if t["state"] == "complete"]
    best = max(complete, key=lambda t: float(t["selection_accuracy"]))
    summary = json.loads((out / "sweep" / "summary.json").read_text())
    assert summary["best_trial"] == int(best["trial"])
    # The student kept is the best trial's: its metrics.json records that trial's settings and score.
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["alpha"] == pytest.approx(float(best["alpha"]))
    assert metrics["selection"]["accuracy"] == pytest.approx(float(best["selection_accuracy"]))
    assert metrics["data"]["selection_examples"] == 80 and metrics["train_examples"] == 240
    # Scored once on the validation split: the number agrees with plain transformers' predictions.
    assert metrics["validation"]["accuracy"] == pytest.approx(dev_accuracy(out / "student", sst2_slice))
    assert summary["validation"]["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])
    card = (out / "student" / "README.md").read_text()
    assert "selection split" in card and f"{metrics['validation']['accuracy']:.4f}" in card
    # Only the best trial's student stays on disk.
    assert [p.name for p in (out / "sweep" / "trials").iterdir()] == [f"trial-{int(best['trial']):03d}"]
    for chart in ("history.png", "settings.png"):
        assert (out / "sweep" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "sweep" / "trials.md").read_text().splitlines()
    assert len(table) == 2 + 4 and "alpha" in table[0]


def test_best_config_repeats_the_best_trial(swept, sst2_slice, tmp_path):
    out, _ = swept
    again = tmp_path / "again"
    result = run_script("distilled-bert.py", "--config", out / "sweep" / "best_config.yaml", "--output_dir", again)
    assert result.returncode == 0, result
    kept = json.loads((out / "student" / "metrics.json").read_text())
    repeated = json.loads((again / "student" / "metrics.json").read_text())
    assert repeated["selection"] == kept["selection"]  # the same rows, split and seed: the same run
    # distilled-bert.py --selection_split scores its kept model once on validation, as plain transformers does.
    assert repeated["selected_on"] == "selection"
    assert repeated["validation"]["accuracy"] == pytest.approx(dev_accuracy(again / "student", sst2_slice))
    texts = dev_texts(sst2_slice)
    assert independent_predictions(again / "student", texts) == independent_predictions(out / "student", texts)


def test_the_teacher_runs_once_for_the_whole_sweep(sst2_slice, trained_teacher, tiny_models, tmp_path, monkeypatch):
    """Counts the teacher's forward passes over a 3-trial sweep through the API: one pass over the transfer set."""
    from kd_bert import DataConfig, DistillConfig, SweepConfig, TrainConfig, sweep
    from kd_bert.jobs import distill as distill_job

    calls = []
    real = distill_job.load_classifier

    def counted(source, flag, *args, **kwargs):
        model = real(source, flag, *args, **kwargs)
        if flag == "--teacher_model":
            model.register_forward_hook(lambda module, inputs, output: calls.append(1))
        return model

    monkeypatch.setattr(distill_job, "load_classifier", counted)
    train = TrainConfig(output_dir=tmp_path / "api", num_train_epochs=1, batch_size=16, eval_batch_size=16,
                        max_train_samples=96, selection_split=0.25, mixed_precision="no", report_to="none")
    result = sweep(SweepConfig(trials=3, search=["alpha=0.2:0.9"], pruner="none"),
                   DistillConfig(teacher_model=str(trained_teacher), student_model=str(tiny_models["student_base"])),
                   DataConfig(data_path=sst2_slice, max_length=64), train)
    assert len(calls) == math.ceil(72 / 16)  # 72 training rows, in batches of 16, once
    assert [row["state"] for row in result.trials] == ["complete"] * 3
    assert result.selection_score == max(row["score"] for row in result.trials)
    assert result.model_dir == tmp_path / "api" / "student" and result.validation["num_examples"] == 120


def keyword_data(folder):
    """A task the tiny student learns in a few updates: the label is whether the sentence says good or bad."""
    import random

    rng = random.Random(0)
    folder.mkdir()
    words = [r[0].split() for r in read_tsv(SST2 / "train.tsv")[1:400]]
    for name, count in (("train", 200), ("dev", 40)):
        rows = [["sentence", "label"]]
        for i in range(count):
            word = "good" if i % 2 else "bad"
            rows.append([" ".join([word] * 4 + rng.choice(words)[:4]), str(i % 2)])
        write_tsv(folder / f"{name}.tsv", rows)
    (folder / "labels.txt").write_text("negative\npositive\n")
    return folder


@pytest.mark.slow
def test_hopeless_trials_are_pruned(tiny_models, tmp_path):
    """A learning rate that cannot move the model is worse than the median of the earlier trials at its
    first evaluation and stops there; the others run to the end."""
    data = keyword_data(tmp_path / "keywords")
    out = tmp_path / "pruning"
    # Each rate with five weight decays too small to matter in 40 updates: a trial never repeats another's settings.
    result = run_script("sweep.py", "--data_path", data, "--student_model", tiny_models["student_base"], "--alpha", "0",
                        "--output_dir", out, *TRIAL, "--num_train_epochs", "4", "--trials", "10",
                        "--search", "learning_rate=1e-9,1e-2", "weight_decay=0,0.001,0.002,0.003,0.004")
    assert result.returncode == 0, result
    trials = trials_of(out)
    score = {rate: [float(t["selection_accuracy"]) for t in trials if float(t["learning_rate"]) == rate]
             for rate in (1e-9, 1e-2)}
    assert min(score[1e-2]) >= 0.9 and max(score[1e-9]) == 0.5, trials  # one learns, the other cannot
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(float(t["learning_rate"]) == 1e-9 for t in pruned), trials
    full = max(int(t["steps"]) for t in trials if t["state"] == "complete")
    assert all(int(t["steps"]) < full for t in pruned)
    assert json.loads((out / "student" / "metrics.json").read_text())["validation"]["accuracy"] >= 0.9


def _start(args, out):
    return subprocess.Popen([sys.executable, str(REPO / "sweep.py"), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _wait_for_trials(out, count: int, proc, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        csv_file = out / "sweep" / "trials.csv"
        if csv_file.is_file() and len(trials_of(out)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the sweep did not reach {count} trials: {proc.poll()}")


# Both slow (a sweep process stopped mid-trial and run again, about 12 s each); CI runs them with -m slow.
@pytest.mark.parametrize("how", [pytest.param(signal.SIGKILL, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_stopped_sweep_continues_with_the_same_command(sst2_slice, trained_teacher, tiny_models, tmp_path, how):
    out = tmp_path / "stopped"
    args = [*sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--trials", "3", "--pruner", "none",
            "--search", "alpha=0.1:1.0", "temperature=1:8"]
    proc = _start([*args, "--num_train_epochs", "4"], out)
    _wait_for_trials(out, 1, proc)
    deadline = time.time() + 120  # into the second trial: once it has kept a model, 55 of its 60 updates remain
    while not (out / "sweep" / "trials" / "trial-001" / "student").is_dir() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(how)
    output, _ = proc.communicate(timeout=120)
    first = {t["trial"]: t for t in trials_of(out)}
    assert first["0"]["state"] == "complete"
    if how == signal.SIGTERM:
        assert proc.returncode == 143, output
        assert "trial 1 was interrupted" in output and "running the same command again continues it" in output
        assert first["1"]["state"] == "interrupted"
    again = run_script("sweep.py", *args, "--num_train_epochs", "4")
    assert again.returncode == 0, again
    trials = trials_of(out)
    done = [t for t in trials if t["state"] == "complete"]
    assert len(done) == 3, trials
    assert {t["trial"]: t for t in trials}["0"] == first["0"]  # the finished trial is kept, not run again
    reruns = [t for t in trials if t["rerun_of"]]
    assert len(reruns) == 1 and reruns[0]["state"] == "complete"
    interrupted = {t["trial"]: t for t in trials}[reruns[0]["rerun_of"]]
    assert interrupted["state"] == "interrupted"
    assert (reruns[0]["alpha"], reruns[0]["temperature"]) == (interrupted["alpha"], interrupted["temperature"])
    # The continuing process draws settings of its own: it does not replay the first process's draws.
    assert len({(t["alpha"], t["temperature"]) for t in done}) == 3, trials


@pytest.mark.slow  # three sweep processes one after another, about 10 s; CI runs it with -m slow
def test_a_continued_sweep_draws_settings_no_trial_has_tried(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """--trials raised twice: every new trial's settings are new, on a range of numbers and on a few choices."""
    out = tmp_path / "raised"
    args = [*sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--num_train_epochs", "1", "--pruner", "none",
            "--search", "alpha=0.1:1.0", "temperature=1:8"]
    for trials in ("2", "4"):
        result = run_script("sweep.py", *args, "--trials", trials)
        assert result.returncode == 0, result
    settings = [(t["alpha"], t["temperature"]) for t in trials_of(out)]
    assert len(settings) == 4 and len(set(settings)) == 4, settings
    # Two choices: the second trial takes the one the first did not, and a third is refused up front.
    out = tmp_path / "choices"
    args = [*sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--num_train_epochs", "1", "--pruner", "none",
            "--search", "alpha=0.3,0.7"]
    for trials in ("1", "2"):
        result = run_script("sweep.py", *args, "--trials", trials)
        assert result.returncode == 0, result
    assert sorted(t["alpha"] for t in trials_of(out)) == ["0.3", "0.7"], trials_of(out)
    before = snapshot(out / "sweep")
    result = run_script("sweep.py", *args, "--trials", "3")
    assert_clean_failure(result, "--trials 3 is more than the 2 settings the space holds", "pass --trials 2")
    assert snapshot(out / "sweep") == before


@pytest.mark.slow
@pytest.mark.parametrize("objectives", [["--pruner", "none"], ["--objectives", "accuracy,latency", "--timing_samples",
                                                               "8", "--timing_rounds", "1"]], ids=["one", "two"])
def test_two_processes_share_one_study_without_duplicating_trials(sst2_slice, trained_teacher, tiny_models, tmp_path,
                                                                  objectives):
    """Also with two objectives: each process keeps and times again the front's students it ran itself."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [_start([*sweep_args(sst2_slice, trained_teacher, tiny_models, tmp_path / f"machine-{i}"), "--trials",
                     "6", *objectives, "--search", "alpha=0.1:1.0", "--storage", storage], None)
             for i in range(2)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    ran = [line.split()[1] for output in outputs for line in output.splitlines() if line.startswith("trial ")]
    assert sorted(ran, key=int) == [str(n) for n in range(len(ran))] and len(ran) == len(set(ran))
    study = optuna.load_study(study_name="kd-bert-sweep", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 6 and len(ran) == 6
    assert len({t.user_attrs["owner"]["pid"] for t in finished}) == 2  # both worked on it
    assert len({t.params["alpha"] for t in finished}) == 6
    if "--objectives" in objectives:
        for i in range(2):
            doc = json.loads((tmp_path / f"machine-{i}" / "sweep" / "frontier.json").read_text())
            assert doc["front"] and all(len(t.values) == 2 for t in finished)


def test_the_space_is_checked_before_anything_loads(sst2_slice, trained_teacher, tiny_models, tmp_path):
    out = tmp_path / "bad"
    for space, phrase in ((["alpha=0.1:1.5"], "--alpha must be in [0, 1]"),
                          (["debug=true,false"], "--debug says how the script reports errors"),
                          (["output_dir=a,b"], "pass --output_dir to set it"),
                          (["alpah=0:1"], "no flag of distilled-bert.py"),
                          (["learning_rate=0:1e-3:log"], "log scale needs LOW above 0"),
                          (["augment=0,1"], "--augment adds sentences that only the teacher can label")):
        extra = ["--alpha", "0"] if space == ["augment=0,1"] else []
        result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), *extra,
                            "--search", *space)
        assert_clean_failure(result, phrase, output_dir=out)
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--selection_split",
                        "0")
    assert_clean_failure(result, "--selection_split above 0", output_dir=out)


def test_layers_no_student_can_keep_are_refused_before_the_first_trial(sst2_slice, trained_teacher, tiny_models,
                                                                       tmp_path):
    """The teacher has 2 layers: a student of 5 of them fails now, not in every trial that draws 5."""
    out = tmp_path / "layers"
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--student_init",
                        "teacher_layers", "--search", "student_layers=1,5")
    assert_clean_failure(result, "--search student_layers=5: --student_layers 5: the teacher has 2 layers",
                         output_dir=out)


def test_layer_indices_for_a_first_layers_student_are_refused_before_the_first_trial(sst2_slice, trained_teacher,
                                                                                      tiny_models, tmp_path):
    """first_layers keeps a count of first layers: indices failed in every trial before, now at once."""
    out = tmp_path / "first"
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--student_init",
                        "first_layers", "--student_layers", "0,1", "--search", "alpha=0.1:1.0")
    assert_clean_failure(result, "--student_layers 0,1: --student_init first_layers keeps the first layers",
                         output_dir=out)


def test_a_sweep_whose_trials_all_failed_fails_in_one_line(sst2_slice, trained_teacher, tiny_models, tmp_path,
                                                           monkeypatch):
    """Trials whose runs fail (their loss became nan, say) are recorded; when none finished, the sweep is an error
    that names the last failure, not a success with nothing kept."""
    from kd_bert import DataConfig, DistillConfig, SweepConfig, TrainConfig, UserError, sweep
    from kd_bert.jobs import sweep as sweep_job

    def failing(*args, **kwargs):
        raise UserError("the loss became nan at epoch 0, step 3")

    monkeypatch.setattr(sweep_job, "distill_trial", failing)
    train = TrainConfig(output_dir=tmp_path / "failing", selection_split=0.25, mixed_precision="no", report_to="none")
    with pytest.raises(UserError, match=r"no trial of this sweep finished \(2 of its 2 failed, the last with: the loss "
                                        r"became nan"):
        sweep(SweepConfig(trials=2, search=["alpha=0.2:0.9"], pruner="none"),
              DistillConfig(teacher_model=str(trained_teacher), student_model=str(tiny_models["student_base"])),
              DataConfig(data_path=sst2_slice, max_length=64), train)
    assert not (tmp_path / "failing" / "student").exists()


def test_a_storage_url_no_driver_opens_is_refused_and_leaves_nothing(sst2_slice, trained_teacher, tiny_models,
                                                                     tmp_path):
    out = tmp_path / "bad-storage"
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--storage",
                        "nosuchdatabase://user@host/db")
    assert_clean_failure(result, "nosuchdatabase://user@host/db: cannot open the study's database",
                         "sqlite:///sweep.db", output_dir=out)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_storage_is_refused_in_one_line(sst2_slice, trained_teacher, tiny_models, tmp_path, url):
    out = tmp_path / "in-memory"
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--storage", url)
    assert_clean_failure(result, f"--storage {url} is an in-memory database", "neither continued nor shared",
                         output_dir=out)


def test_a_study_made_with_other_settings_is_refused(swept, sst2_slice, trained_teacher, tiny_models):
    out, _ = swept
    before = trials_of(out)
    result = run_script("sweep.py", *sweep_args(sst2_slice, trained_teacher, tiny_models, out), "--trials", "4",
                        *SPACE, "--kd_loss", "mse")
    assert_clean_failure(result, "was made with other settings: --kd_loss kl -> mse; run the command that made it")
    assert len(result.stderr.strip()) < 300, result.stderr  # the flags that differ, not every flag twice
    assert trials_of(out) == before


def test_a_study_whose_data_teacher_or_student_start_changed_is_refused(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """The training data edited in place, or the teacher retrained in its folder: the study's trials would not
    compare with new ones, so continuing it is refused, and nothing of it changes."""
    data, teacher, student, out = tmp_path / "data", tmp_path / "teacher", tmp_path / "student", tmp_path / "out"
    shutil.copytree(sst2_slice, data)
    shutil.copytree(trained_teacher, teacher)
    shutil.copytree(tiny_models["student_base"], student)
    args = [*sweep_args(data, teacher, {**tiny_models, "student_base": student}, out), "--num_train_epochs", "1",
            "--pruner", "none", "--search", "alpha=0.1:1.0"]
    result = run_script("sweep.py", *args, "--trials", "1")
    assert result.returncode == 0, result
    kept = {name: content for name, content in snapshot(out).items() if not name.endswith("study.db")}
    rows = read_tsv(data / "train.tsv")
    rows[5][1] = str(1 - int(rows[5][1]))  # one label corrected
    write_tsv(data / "train.tsv", rows)
    result = run_script("sweep.py", *args, "--trials", "2")
    assert_clean_failure(result, "was made with other inputs: the training data (--data_path) changed",
                         "pass another --output_dir")
    write_tsv(data / "train.tsv", read_tsv(sst2_slice / "train.tsv"))
    shutil.rmtree(teacher)
    nudged_copy(trained_teacher, teacher)  # retrained: the same files, other weights
    result = run_script("sweep.py", *args, "--trials", "2")
    assert_clean_failure(result, "the teacher's weights (--teacher_model) changed", "pass another --output_dir")
    shutil.rmtree(teacher)
    shutil.copytree(trained_teacher, teacher)
    shutil.rmtree(student)
    nudged_copy(tiny_models["student_base"], student)  # the student's start retrained in its folder
    result = run_script("sweep.py", *args, "--trials", "2")
    assert_clean_failure(result, "the weights the student starts from (--student_model) changed",
                         "pass another --output_dir")
    assert {name: content for name, content in snapshot(out).items() if not name.endswith("study.db")} == kept
    assert len(trials_of(out)) == 1


@pytest.fixture(scope="module")
def scores(tmp_path_factory, sst2_slice, tiny_models):
    """A regression task: the slice's sentences, each with a score (0.5 or 4.5 by its label), and a one-output
    teacher made from the tiny teacher base (untrained: the sweep's choices, not its scores, are checked)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kd_bert.task import REGRESSION_LABEL

    folder = tmp_path_factory.mktemp("scores")
    for name in ("train.tsv", "dev.tsv"):
        rows = read_tsv(sst2_slice / name)[1:]
        write_tsv(folder / name, [["sentence", "score"]] + [[r[0], f"{4 * int(r[1]) + 0.5:.1f}"] for r in rows])
    teacher = tmp_path_factory.mktemp("score-teacher")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_models["teacher_base"], num_labels=1, id2label={0: REGRESSION_LABEL}, label2id={REGRESSION_LABEL: 0},
        problem_type="regression")
    model.save_pretrained(teacher)
    AutoTokenizer.from_pretrained(tiny_models["teacher_base"]).save_pretrained(teacher)
    return folder, teacher


def test_a_regression_sweep_searches_what_applies_and_names_its_metric(scores, tiny_models, tmp_path):
    data, teacher = scores
    out = tmp_path / "regression"
    result = run_script("sweep.py", *sweep_args(data, teacher, tiny_models, out), "--num_train_epochs", "1",
                        "--trials", "1", "--pruner", "none")
    assert result.returncode == 0, result
    trials = trials_of(out)
    # The default space less temperature, which a score's KD term (an MSE) does not read.
    assert "temperature" not in trials[0] and "alpha" in trials[0] and "selection_pearson" in trials[0], trials
    assert "compared by pearson" in result.stdout and "selection accuracy" not in result.stdout, result.stdout
    # Searched by name, it is refused; so is a metric a score has not, before the first trial.
    for extra, phrase in ((["--search", "temperature=1:8"], "--search temperature: this is a regression task"),
                          (["--metric_for_best_model", "f1"], "--metric_for_best_model f1 needs classes")):
        out = tmp_path / extra[-1].replace(":", "-")
        result = run_script("sweep.py", *sweep_args(data, teacher, tiny_models, out), "--trials", "3", *extra)
        assert_clean_failure(result, phrase, output_dir=out)


def test_a_missing_optuna_is_one_line(monkeypatch, tmp_path):
    from kd_bert import DataConfig, DistillConfig, SweepConfig, TrainConfig, UserError, sweep

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    with pytest.raises(UserError, match=r"needs Optuna.*pip install optuna"):
        sweep(SweepConfig(), DistillConfig(), DataConfig(), TrainConfig(output_dir=tmp_path, selection_split=0.1))
