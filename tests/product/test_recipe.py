"""scripts/recipe.sh runs the whole job (here on tiny models and the SST-2 slice), reports what the
models really do, checks every value before its first step, and continues where a stopped run ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from helpers import REPO, TEST_ROWS, independent_predictions, load_plain, read_tsv

SEEDS = "42 1"


def recipe_env(tiny_models, sst2_slice, **more) -> dict:
    return {**os.environ, "TEACHER_BASE": str(tiny_models["teacher_base"]), "RECIPE_DATA": str(sst2_slice),
            "TEACHER_EPOCHS": "2", "TEACHER_LR": "1e-3", "STUDENT_LAYERS": "1", "STUDENT_LR": "1e-3",
            "EVAL_STEPS": "7", "CHECKPOINT_STEPS": "3", "SEEDS": SEEDS, "SETUP": "0",
            "TOKENIZERS_PARALLELISM": "false",
            # auto picks full precision, whatever the machine: the models are checked against fp32 predictions,
            # and a resumed run must end exactly where an uninterrupted one does.
            "KD_BERT_AUTO_PRECISION": "no", **more}


def run_recipe(env: dict, *args: str, cwd=REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "recipe.sh"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, sst2_slice, tiny_models):
    out = tmp_path_factory.mktemp("recipe") / "run"
    proc = run_recipe(recipe_env(tiny_models, sst2_slice), "sst2-small", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def accuracies(results: dict) -> dict:
    """What a results table says of the models, without the times."""
    return {"teacher": results["teacher"]["dev_accuracy"],
            **{f"{kind}/{row['seed']}": (row["distilled"], row["twin"], row["agreement"])
               for kind, student in results["students"].items() for row in student["seeds"]}}


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_recipe_writes_loadable_models_and_glue_predictions(recipe, sst2_slice):
    out, _ = recipe
    texts = [r[1] for r in read_tsv(sst2_slice / "test.tsv")[1:]]
    assert load_plain(out / "teacher")[0].config.id2label == {0: "negative", 1: "positive"}
    for seed in SEEDS.split():
        folder = out / "student3" / f"seed-{seed}"
        for role in ("student", "student_no_kd"):
            model, _ = load_plain(folder / role)
            assert model.config.id2label == {0: "negative", 1: "positive"}
            assert model.config.num_hidden_layers == 1
        lines = (folder / "SST-2.tsv").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == TEST_ROWS + 1
        assert [int(line.split("\t")[1]) for line in lines[1:]] == independent_predictions(folder / "student", texts)
        augmented = json.loads((folder / "student" / "metrics.json").read_text())["augmented_examples"]
        assert augmented == 320  # --augment 1: one teacher-labeled copy of each training sentence
        assert json.loads((folder / "student" / "training_args.json").read_text())["args"]["seed"] == int(seed)
    assert "finished" in (out / "recipe_status.txt").read_text()


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_recipe_table_reports_the_models_real_accuracy(recipe, sst2_slice):
    out, stdout = recipe
    dev = read_tsv(sst2_slice / "dev.tsv")[1:]
    labels = [int(r[1]) for r in dev]

    def accuracy(folder):
        predictions = independent_predictions(folder, [r[0] for r in dev])
        return sum(p == y for p, y in zip(predictions, labels)) / len(labels)

    table = (out / "recipe_results.md").read_text()
    assert table in stdout  # printed and saved
    results = json.loads((out / "recipe_results.json").read_text())
    assert results["teacher"]["dev_accuracy"] == pytest.approx(accuracy(out / "teacher"), abs=1e-9)
    rows = results["students"]["student3"]["seeds"]
    assert [r["seed"] for r in rows] == sorted(int(s) for s in SEEDS.split())
    for row in rows:
        folder = out / "student3" / f"seed-{row['seed']}"
        assert row["distilled"] == pytest.approx(accuracy(folder / "student"), abs=1e-9)
        assert row["twin"] == pytest.approx(accuracy(folder / "student_no_kd"), abs=1e-9)
        assert f"| {row['seed']} | {100 * row['distilled']:.2f} | {100 * row['twin']:.2f} | " in table
    mean = sum(r["distilled"] - r["twin"] for r in rows) / len(rows)
    assert results["students"]["student3"]["mean"]["difference"] == pytest.approx(mean, abs=1e-12)
    assert f"| mean of {len(rows)} | " in table


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_running_a_finished_recipe_again_checks_and_skips_every_step(recipe, tiny_models, sst2_slice):
    out, _ = recipe
    before = (out / "recipe_results.json").read_text()
    proc = run_recipe(recipe_env(tiny_models, sst2_slice), "sst2-small", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "$ " not in proc.stdout  # no step ran
    assert proc.stdout.count("done earlier, outputs checked; skipped") == 1 + 3 * len(SEEDS.split())
    assert accuracies(json.loads((out / "recipe_results.json").read_text())) == accuracies(json.loads(before))


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_a_changed_output_runs_its_step_again(tmp_path, recipe, tiny_models, sst2_slice):
    out, _ = recipe
    copy = tmp_path / "run"
    subprocess.run(["cp", "-a", str(out), str(copy)], check=True)
    predictions = copy / "student3" / "seed-1" / "SST-2.tsv"
    predictions.write_text("damaged\n")
    proc = run_recipe(recipe_env(tiny_models, sst2_slice), "sst2-small", str(copy))  # a moved folder is still known
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step student3/seed-1/test finished before, but its outputs are changed" in proc.stdout
    assert proc.stdout.count("$ ") == 1  # that step alone ran again
    assert predictions.read_text() == (out / "student3" / "seed-1" / "SST-2.tsv").read_text()


def checkpointed(folder) -> bool:
    """Whether a checkpoint is under folder yet, while the run writes there."""
    try:
        return any(folder.glob("**/step-*"))
    except FileNotFoundError:  # a .step-N.partial folder renamed to step-N while the glob walked it
        return False


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_a_recipe_killed_at_any_moment_ends_with_the_same_table(tmp_path, recipe, tiny_models, sst2_slice):
    """SIGKILL to the whole recipe, once while the teacher trains (after its first checkpoint) and once
    while the first student trains; each restart continues, and the table is the uninterrupted run's."""
    uninterrupted, _ = recipe
    out = tmp_path / "run"  # given relative to where the command runs: OUTPUT_DIR may be anywhere
    env = recipe_env(tiny_models, sst2_slice, SEEDS="42")
    kills = [out / "checkpoints" / "teacher", out / "student3" / "seed-42" / "checkpoints"]
    for folder in kills:
        proc = subprocess.Popen(["bash", str(REPO / "scripts" / "recipe.sh"), "sst2-small", "run"], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while not checkpointed(folder) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the recipe ended before the moment to kill it"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert "running" in (out / "recipe_status.txt").read_text()
    proc = run_recipe(env, "sst2-small", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== teacher: done earlier" in proc.stdout
    assert "student3/seed-42: distill" not in proc.stdout or "(resumed from its last checkpoint)" in proc.stdout
    got = accuracies(json.loads((out / "recipe_results.json").read_text()))
    want = accuracies(json.loads((uninterrupted / "recipe_results.json").read_text()))
    assert got == {k: v for k, v in want.items() if k in ("teacher", "student3/42")}


@pytest.mark.slow  # sst2-few end to end on tiny models
def test_few_labels_distills_the_students_it_is_given(tmp_path, trained_teacher, tiny_models, sst2_slice):
    """STUDENTS=minilm6 gives sst2-few STUDENT_BASE as it is, distilled on the labeled sentences and the unlabeled
    text, beside its baseline on the labeled ones alone; no other student is trained."""
    out = tmp_path / "few"
    env = recipe_env(tiny_models, sst2_slice, SEEDS="42", TEACHER=str(trained_teacher), LABELED="100",
                     STUDENTS="minilm6", STUDENT_BASE=str(tiny_models["student_base"]), STUDENT_EPOCHS="1",
                     BASELINE_EPOCHS="1")
    proc = run_recipe(env, "sst2-few", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [".recipe", "data", "minilm6"]
    folder = out / "minilm6" / "seed-42"
    for role, examples in ((folder / "student", 320), (folder / "baseline" / "student", 100)):
        model, _ = load_plain(role)
        assert model.config.num_hidden_layers == 1  # the student base as it is, no layers dropped
        assert json.loads((role / "metrics.json").read_text())["train_examples"] == examples
    results = json.loads((out / "recipe_results.json").read_text())
    assert list(results["students"]) == ["minilm6"]
    dev = read_tsv(out / "data" / "dev.tsv")[1:]
    right = sum(p == int(row[1]) for p, row in zip(independent_predictions(folder / "student", [r[0] for r in dev]), dev))
    assert results["students"]["minilm6"]["seeds"][0]["distilled"] == pytest.approx(right / len(dev))


@pytest.mark.parametrize("env, args, message", [
    ({"ALPHA": "2"}, ["sst2"], "ALPHA=2 is out of range"),
    ({"TEACHER_EPOCHS": "two"}, ["sst2"], "TEACHER_EPOCHS='two' is not a whole number"),
    ({"LABELED": "400"}, ["sst2-few"], "LABELED=400: "),
    ({"SEEDS": "1 1"}, ["sst2"], "SEEDS='1 1'"),
    ({"STUDENTS": "minilm6 student3"}, ["sst2"], "STUDENTS='minilm6 student3': give one or more of minilm6 minilm3"),
    ({"STUDENTS": ""}, ["sst2-few"], "STUDENTS='': give one or more of minilm6 minilm3 for sst2-few"),
    ({"STUDENT_EXTRA": "--hidden_weight -1"}, ["sst2"], "distilled-bert.py would refuse its flags (--hidden_weight"),
    ({"STUDENT_EXTRA": "--no_such_flag"}, ["sst2"], "unrecognized arguments: --no_such_flag"),
    ({"TEACHER": "/no/such/teacher"}, ["sst2"], "TEACHER=/no/such/teacher holds no model"),
    ({}, ["sst2", "OUT", "extra"], "usage: bash scripts/recipe.sh RECIPE [OUTPUT_DIR]"),
    ({}, ["nope"], "usage: bash scripts/recipe.sh RECIPE [OUTPUT_DIR]"),
])
def test_a_bad_value_is_refused_before_the_first_step(tmp_path, sst2_slice, env, args, message):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    if len(args) == 1:
        args.append(str(tmp_path / "out"))
    proc = run_recipe({**os.environ, "RECIPE_DATA": str(sst2_slice), "SETUP": "0", **env}, *args, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_help_names_every_recipe_and_variable_with_its_default():
    proc = run_recipe(dict(os.environ), "--help", timeout=60)
    assert proc.returncode == 0
    for name in ("sst2", "sst2-small", "sst2-few", "ALPHA='0.5'", "SEEDS='42 1 2'", "TEACHER_EPOCHS='2'",
                 "LABELED='2000'", "STUDENT_EXTRA=''", "recipe_status.txt"):
        assert name in proc.stdout


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
def test_a_finished_step_the_recipe_did_not_record_is_taken_as_done(recipe, tiny_models, sst2_slice, tmp_path):
    """A teacher trained with the step's own flags (by hand, or the recipe killed just after it ended) is
    checked and recorded, never trained again."""
    out, _ = recipe
    copy = tmp_path / "run"
    subprocess.run(["cp", "-a", str(out), str(copy)], check=True)
    (copy / ".recipe" / "steps" / "teacher.json").unlink()
    weights = (copy / "teacher" / "model.safetensors").read_bytes()
    proc = run_recipe(recipe_env(tiny_models, sst2_slice), "sst2-small", str(copy))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== teacher: finished earlier with these settings" in proc.stdout and "$ " not in proc.stdout
    assert (copy / "teacher" / "model.safetensors").read_bytes() == weights
    record = json.loads((copy / ".recipe" / "steps" / "teacher.json").read_text())
    assert record["adopted"] and record["seconds"] == pytest.approx(json.loads(
        (copy / "teacher" / "metrics.json").read_text())["total_train_seconds"], abs=0.05)


@pytest.mark.slow  # the recipe end to end (its module fixture trains a teacher and students)
@pytest.mark.parametrize("record", [True, False])
def test_changed_settings_never_train_over_a_finished_step(recipe, tiny_models, sst2_slice, tmp_path, record):
    """A variable changed after a step finished: refused before anything runs, naming the flag, with the
    step recorded or not; nothing is written."""
    out, _ = recipe
    copy = tmp_path / "run"
    subprocess.run(["cp", "-a", str(out), str(copy)], check=True)
    if not record:
        (copy / ".recipe" / "steps" / "teacher.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file() and ".recipe" not in p.parts}
    proc = run_recipe(recipe_env(tiny_models, sst2_slice, TEACHER_LR="2e-3"), "sst2-small", str(copy))
    assert proc.returncode == 2
    assert "step teacher finished with other settings than this run's (--learning_rate 0.001 then, 0.002 now)" \
        in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file() and ".recipe" not in p.parts} == before


@pytest.mark.parametrize("recipe_name", ["sst2-few", "sst2"])
def test_data_where_the_recipe_writes_is_refused_and_kept(sst2_slice, tmp_path, recipe_name):
    """RECIPE_DATA=$OUT/data once let few_labels.py write over the training set it read."""
    out = tmp_path / "out"
    data = out / "data" if recipe_name == "sst2-few" else out / "minilm3"
    data.mkdir(parents=True)
    for p in sst2_slice.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    proc = run_recipe({**os.environ, "RECIPE_DATA": str(data), "SETUP": "0", "LABELED": "50"}, recipe_name, str(out),
                      timeout=120)
    assert proc.returncode == 2 and "lies where the recipe writes" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == [data.name]
