"""Regression tasks (STS-B-style similarity scores): a float label column trains a one-output model, the
student learns it by MSE against the teacher's score, and evaluation reports Pearson, Spearman and MSE.

The scripts run as a user runs them, on a sentence-pair data set built here whose score is a function of
the words; every number they report is checked against scipy on the saved models' own predictions. The
Task answers every question on which the kinds differ, and no module outside task.py asks which kind it has.
"""

import ast
import json
import random
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import FAST_TRAINING, REPO, read_tsv, run_script, write_tsv
from scipy import stats

from kd_bert import DataConfig, DistillConfig, EvalConfig, TrainConfig, UserError
from kd_bert.scoring.metrics import is_better
from kd_bert.task import REGRESSION_LABEL, Classification, Regression, Task

TRAIN_PAIRS, DEV_PAIRS, TEST_PAIRS = 300, 80, 20
# Full precision everywhere: the scripts' numbers are compared with plain float32 transformers. With
# batches of 8 at 3e-3 the tiny models learn the scores' scale in two epochs (the teacher's validation
# MSE 0.35, Pearson 0.96); with FAST_TRAINING's 16 at 1e-3 they barely leave the mean (Pearson 0.2).
RUN = [*FAST_TRAINING, "--batch_size", "8", "--learning_rate", "3e-3", "--mixed_precision", "no"]
# One thread: tiny models gain nothing from a second, and on a CPU shared with another process two
# threads spin-wait on each other (a teacher run took 30 s with two and 6 s with one, the same numbers).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _pairs(words: list[str], count: int, rng: random.Random) -> list[list[str]]:
    """Rows sentence1, sentence2, score: the score is 5 x the share of "high" words (the first half of
    `words`) over both sentences, rounded to 2 decimals, so most scores are not whole numbers."""
    half = len(words) // 2
    high, low = words[:half], words[half:]
    rows = []
    for _ in range(count):
        share = rng.random()
        sentences = [[rng.choice(high) if rng.random() < share else rng.choice(low) for _ in range(rng.randint(3, 7))]
                     for _ in range(2)]
        tokens = sentences[0] + sentences[1]
        score = 5 * sum(t in high for t in tokens) / len(tokens)
        rows.append([" ".join(sentences[0]), " ".join(sentences[1]), f"{score:.2f}"])
    return rows


@pytest.fixture(scope="module")
def sts(tmp_path_factory, sst2_slice):
    """GLUE STS-B's form: train.tsv and dev.tsv with sentence1, sentence2, score; test.tsv without scores.
    The words are the SST-2 slice's commonest, so the tiny models' vocabulary has them whole."""
    counts = Counter(w for r in read_tsv(sst2_slice / "train.tsv")[1:] for w in r[0].split() if w.isalpha())
    words = [w for w, _ in counts.most_common(40)]
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("sts")
    header = ["sentence1", "sentence2", "score"]
    write_tsv(folder / "train.tsv", [header] + _pairs(words, TRAIN_PAIRS, rng))
    write_tsv(folder / "dev.tsv", [header] + _pairs(words, DEV_PAIRS, rng))
    write_tsv(folder / "test.tsv", [["index", "sentence1", "sentence2"]]
              + [[str(i), a, b] for i, (a, b, _) in enumerate(_pairs(words, TEST_PAIRS, rng))])
    return folder


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, sts, tiny_models):
    out = tmp_path_factory.mktemp("sts-teacher")
    result = run_script("trainer_teacher.py", "--data_path", sts, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", out, *RUN, env=ONE_THREAD)
    assert result.returncode == 0, result
    return result, out / "teacher"


@pytest.fixture(scope="module")
def student_run(tmp_path_factory, sts, teacher_run, tiny_models):
    # --kd_loss kl and --temperature 4 are given to show that they do not apply to a score;
    # --augment adds copies with no gold score (IGNORE_LABEL among the float labels).
    out = tmp_path_factory.mktemp("sts-student")
    result = run_script("distilled-bert.py", "--data_path", sts, "--teacher_model", teacher_run[1],
                        "--student_model", tiny_models["student_base"], "--output_dir", out, *RUN,
                        "--kd_loss", "kl", "--temperature", "4", "--augment", "1", "--compare_no_kd", env=ONE_THREAD)
    assert result.returncode == 0, result
    return result, out


def dev_rows(sts) -> tuple[list[tuple[str, str]], np.ndarray]:
    rows = read_tsv(sts / "dev.tsv")[1:]
    return [(a, b) for a, b, _ in rows], np.array([float(s) for _, _, s in rows])


def plain_scores(folder, pairs) -> np.ndarray:
    """The model's score for each pair through plain transformers: one example at a time, no padding."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        return np.array([model(**tokenizer(a, b, truncation=True, max_length=64, return_tensors="pt")).logits[0, 0]
                         .item() for a, b in pairs])


def assert_matches_scipy(metrics: dict, predicted: np.ndarray, gold: np.ndarray) -> None:
    assert metrics["pearson"] == pytest.approx(stats.pearsonr(predicted, gold).statistic, abs=1e-5)
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(predicted, gold).statistic, abs=1e-5)
    assert metrics["mse"] == pytest.approx(float(np.mean((predicted - gold) ** 2)), rel=1e-5)


def test_a_float_label_column_trains_a_regression_teacher(teacher_run, sts):
    from transformers import AutoModelForSequenceClassification

    result, folder = teacher_run
    assert "objective: 1 * mse" in result.stdout
    assert "the best model is picked by validation pearson" in result.stdout  # the default accuracy, read for the task
    assert "validation pearson" in result.stdout and "validation accuracy" not in result.stdout
    config = json.loads((folder / "config.json").read_text())
    assert len(config["id2label"]) == 1
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": REGRESSION_LABEL}
    model = AutoModelForSequenceClassification.from_pretrained(str(folder))
    assert model.config.problem_type == "regression" and model.config.num_labels == 1

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metric_for_best_model"] == "pearson" and metrics["label_names"] == [REGRESSION_LABEL]
    assert {"pearson", "spearman", "mse", "loss"} <= set(metrics["validation"])
    validation = metrics["validation"]
    assert validation["num_examples"] == DEV_PAIRS and validation["loss"] == validation["mse"]
    assert validation["pearson"] == max(h["eval"]["pearson"] for h in metrics["history"]) > 0.5  # it learned
    assert {"train_mse_loss"} <= set(metrics["history"][0]) and "train_ce_loss" not in metrics["history"][0]
    pairs, gold = dev_rows(sts)
    assert_matches_scipy(metrics["validation"], plain_scores(folder, pairs), gold)


def test_the_student_learns_the_teachers_score_by_mse(student_run, teacher_run):
    result, out = student_run
    assert "objective: 0.5 * kd_mse + 0.5 * mse" in result.stdout  # no temperature, whatever --kd_loss says
    assert "--kd_loss and --temperature do not apply" in result.stdout
    assert "objective: 1 * mse" in result.stdout  # the twin trained without the teacher
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["loss"]["regression"] is True and metrics["augmented_examples"] == TRAIN_PAIRS
    assert {"train_kd_loss", "train_mse_loss"} <= set(metrics["history"][0])
    assert "train_ce_loss" not in metrics["history"][0]
    assert {"pearson", "spearman", "mse"} <= set(metrics["validation"])
    for role in ("student", "student_no_kd"):
        assert json.loads((out / role / "config.json").read_text())["problem_type"] == "regression"
    comparison = json.loads((out / "kd_vs_no_kd.json").read_text())
    assert set(comparison) == {"pearson", "spearman", "train_seconds"}
    no_kd = json.loads((out / "student_no_kd" / "metrics.json").read_text())
    assert comparison["pearson"]["no_kd"] == no_kd["validation"]["pearson"]
    assert "pearson" in result.stdout.split("with and without the teacher")[1]


def test_a_regression_sweep_compares_and_reports_pearson(teacher_run, sts, tiny_models, tmp_path):
    pytest.importorskip("optuna")
    import csv

    # Six epochs: on the 270 pairs left after the selection split, two leave the student's scores within 1e-4
    # of the mean, where batching's rounding moves Pearson's r by 3e-4; after six its r is about 0.98.
    out = tmp_path / "sweep"
    result = run_script("sweep.py", "--data_path", sts, "--teacher_model", teacher_run[1], "--student_model",
                        tiny_models["student_base"], "--output_dir", out, *RUN, "--num_train_epochs", "6",
                        "--eval_steps", "10", "--trials", "2",
                        "--pruner", "none", "--search", "alpha=0.1:1.0", env=ONE_THREAD)
    assert result.returncode == 0, result
    with open(out / "sweep" / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    # The default --metric_for_best_model accuracy means pearson for a score, and the sweep says so.
    assert len(trials) == 2 and "selection_pearson" in trials[0] and "selection_accuracy" not in trials[0]
    assert "selection pearson" in result.stdout and "selection accuracy" not in result.stdout
    summary = json.loads((out / "sweep" / "summary.json").read_text())
    best = next(t for t in trials if int(t["trial"]) == summary["best_trial"])
    assert float(best["selection_pearson"]) == pytest.approx(summary["selection_pearson"], abs=1e-6)
    assert float(best["selection_pearson"]) == max(float(t["selection_pearson"]) for t in trials)
    pairs, gold = dev_rows(sts)
    assert summary["validation"]["pearson"] > 0.9  # it learned the scores
    assert_matches_scipy(summary["validation"], plain_scores(out / "student", pairs), gold)


def test_evaluate_reports_what_scipy_computes(student_run, teacher_run, sts, tmp_path):
    pytest.importorskip("onnxruntime", reason="--quantize onnx-int8 needs onnxruntime (pip install onnxruntime onnx)")
    student, teacher = student_run[1] / "student", teacher_run[1]
    out, predictions, report = tmp_path / "m.json", tmp_path / "predictions.tsv", tmp_path / "report"
    result = run_script("evaluate.py", "--model", student, "--teacher", teacher, "--data_path", sts, "--output", out,
                        "--predictions_file", predictions, "--report_dir", report, "--latency_samples", "0",
                        "--quantize", "onnx-int8", "--max_length", "64", "--mixed_precision", "no", env=ONE_THREAD)
    assert result.returncode == 0, result
    assert "pearson" in result.stdout and "confusion" not in result.stdout
    metrics = json.loads(out.read_text())
    pairs, gold = dev_rows(sts)
    s_scores, t_scores = plain_scores(student, pairs), plain_scores(teacher, pairs)
    assert_matches_scipy(metrics, s_scores, gold)
    assert_matches_scipy(metrics["teacher"], t_scores, gold)
    assert "accuracy" not in metrics and "expected_calibration_error" not in metrics
    # Side by side: how closely the student follows the teacher, in place of agreement and KL.
    assert metrics["mse_teacher_to_student"] == pytest.approx(float(np.mean((s_scores - t_scores) ** 2)), rel=1e-4)
    assert metrics["pearson_with_teacher"] == pytest.approx(stats.pearsonr(s_scores, t_scores).statistic, abs=1e-5)
    assert "agreement" not in metrics and "correlate with the teacher's" in result.stdout
    lines = predictions.read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == DEV_PAIRS + 1
    assert np.allclose([float(line.split("\t")[1]) for line in lines[1:]], s_scores, atol=1e-4)
    assert sorted(p.name for p in report.iterdir()) == ["metrics.json", "report.md", "scores.png"]
    assert "| Pearson |" in (report / "report.md").read_text()
    assert {"pearson", "spearman", "mse", "pearson_with_fp32"} <= set(metrics["quantized"])


def test_evaluate_text_prints_the_predicted_score(teacher_run):
    folder = teacher_run[1]
    texts = ["a good film", "the story is dull and the acting is bad"]
    result = run_script("evaluate.py", "--model", folder, "--text", texts[0], "--text", texts[1],
                        "--mixed_precision", "no", env=ONE_THREAD)
    assert result.returncode == 0, result
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    printed = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("  score ")]
    with torch.no_grad():
        expected = [model(**tokenizer(t, return_tensors="pt")).logits[0, 0].item() for t in texts]
    assert printed == pytest.approx(expected, abs=1e-3) and "%" not in result.stdout


def test_an_unlabeled_split_gets_float_predictions(student_run, sts, tmp_path):
    from kd_bert import evaluate

    student, path = student_run[1] / "student", tmp_path / "STS-B.tsv"
    scored = evaluate(EvalConfig(model=str(student), split="test", predictions_file=str(path), latency_samples=0,
                                 mixed_precision="no"), DataConfig(data_path=str(sts), max_length=64))
    assert scored.metrics["labeled"] is False and "pearson" not in scored.metrics
    rows = read_tsv(sts / "test.tsv")[1:]
    lines = path.read_text().splitlines()[1:]
    assert [line.split("\t")[0] for line in lines] == [r[0] for r in rows]
    assert np.allclose([float(line.split("\t")[1]) for line in lines], plain_scores(student, [r[1:] for r in rows]),
                       atol=1e-4)


def _classifier(folder, base):
    """A two-label classifier folder (untrained): enough for the checks, which read its config."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=2).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(folder)
    return folder


def test_a_teacher_of_the_other_task_is_refused(teacher_run, sts, sst2_slice, tiny_models, tmp_path):
    from kd_bert import distill, evaluate

    classifier = _classifier(tmp_path / "classifier", tiny_models["teacher_base"])
    train = TrainConfig(output_dir=str(tmp_path / "out"))
    with pytest.raises(UserError, match="are scores .* is a classifier"):
        distill(DistillConfig(teacher_model=str(classifier), student_model=str(tiny_models["student_base"])),
                DataConfig(data_path=str(sts)), train)
    with pytest.raises(UserError, match="are classes .* is a regression model"):
        distill(DistillConfig(teacher_model=str(teacher_run[1]), student_model=str(tiny_models["student_base"])),
                DataConfig(data_path=str(sst2_slice)), train)
    with pytest.raises(UserError, match="are scores .* is a classifier"):
        evaluate(EvalConfig(model=str(classifier), latency_samples=0), DataConfig(data_path=str(sts)))
    with pytest.raises(UserError, match="compare models of the same task"):
        evaluate(EvalConfig(model=str(classifier), teacher=str(teacher_run[1])), DataConfig(data_path=str(sts)))
    assert not (tmp_path / "out").exists()


def test_metric_choices_for_a_regression_task(sts, tiny_models, tmp_path):
    from kd_bert import train_teacher

    scores, classes = Task.of([REGRESSION_LABEL]), Task.of(["negative", "positive"])
    metric, note = scores.best_model_metric("accuracy")
    assert metric == "pearson" and "pearson" in note
    assert scores.best_model_metric("mse") == ("mse", None)
    assert classes.best_model_metric("accuracy") == ("accuracy", None)
    for metric in ("f1", "precision", "recall"):
        with pytest.raises(UserError, match="use pearson, spearman, mse or loss"):
            scores.best_model_metric(metric)
    with pytest.raises(UserError, match="use accuracy, f1"):
        classes.best_model_metric("spearman")
    assert is_better("pearson", 0.5, 0.4) and is_better("spearman", 0.5, 0.4) and is_better("mse", 0.4, 0.5)
    # Refused as soon as the labels are read, before any model is loaded.
    with pytest.raises(UserError, match="--metric_for_best_model f1 needs classes"):
        train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sts)),
                      TrainConfig(output_dir=str(tmp_path), metric_for_best_model="f1"))
    assert not (tmp_path / "teacher").exists()


# ---------------------------------------------------------------- the Task as a strategy

METRIC_NAMES = ("accuracy", "f1", "precision", "recall", "pearson", "spearman", "mse", "score")


def _kind_branches(tree: ast.AST) -> list[int]:
    """Lines that ask which kind of task they have: a read of `.regression`, or a probe like
    `"pearson" in result`. (The distillation's LossSpec takes the kind's name, Task.kind, and picks the
    logit terms declared for it.)"""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "regression":
            lines.append(node.lineno)
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and node.left.value in METRIC_NAMES
                and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)):
            lines.append(node.lineno)
    return lines


def test_no_module_outside_task_py_branches_on_the_kind():
    package = REPO / "kd_bert"
    found = {}
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if name == "task.py":
            continue
        lines = _kind_branches(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[name] = lines
    assert not found, f"ask the Task instead of branching on the kind: {found}"


def test_the_kind_check_finds_a_branch():
    code = """
if task.regression:
    pass
shown = "pearson" in result
LossSpec(task=task.kind)
"""
    assert _kind_branches(ast.parse(code)) == [2, 4]


def test_every_kind_answers_every_question():
    """A new kind is one class: it must set what the base Task declares and define what the kinds define."""
    declared = [name for name, kind in Task.__annotations__.items() if "ClassVar" in str(kind)]
    answers = {name for kind in (Classification, Regression) for name, value in vars(kind).items()
               if callable(value) and not name.startswith("_")}
    for kind in Task.__subclasses__():
        assert all(hasattr(kind, name) for name in declared), kind
        assert all(callable(getattr(kind, name, None)) for name in answers), kind
    assert Task.of(["negative", "positive"]) == Classification(("negative", "positive"))
    assert Task.of([REGRESSION_LABEL]) == Regression((REGRESSION_LABEL,))


def test_the_head_data_and_checks_each_kind_asks_for():
    classes, scores = Task.of(["neg", "pos"]), Task.of([REGRESSION_LABEL])
    assert classes.head_config() == {"num_labels": 2, "id2label": {0: "neg", 1: "pos"}, "label2id": {"neg": 0, "pos": 1}}
    assert scores.head_config()["problem_type"] == "regression" == scores.problem_type
    assert classes.problem_type == "single_label_classification"
    assert classes.encode_labels(["pos", 0, "1"], "dev", "the model", None) == [1, 0, 1]
    assert scores.encode_labels(["3.5", 1], "dev", "the model", None) == [3.5, 1.0]
    assert classes.stratified and not scores.stratified and scores.not_stratified_because == "the labels are scores"
    assert classes.summarize_labels([0, 1, 1]) == "labels neg 1, pos 2"
    assert scores.summarize_labels([0.5, 4.25]) == "scores 0.5 to 4.25"
    # A classifier is never trained or scored on scores; a regression model may score whole-number labels.
    assert classes.accepts(False, True) and not classes.accepts(True, True) and not classes.accepts(True, False)
    assert scores.accepts(True, True) and not scores.accepts(False, True) and scores.accepts(False, False)
    assert scores.unused_settings == ("temperature", "kd_loss") and classes.unused_settings == ()
    assert classes.kd_note is None and "--temperature do not apply" in scores.kd_note


def test_what_each_kind_predicts_and_shows():
    logits = np.array([[0.1, 2.0], [3.0, -1.0]], dtype=np.float32)
    classes, scores = Task.of(["neg", "pos"]), Task.of([REGRESSION_LABEL])
    assert classes.formatted_predictions(logits) == ["1", "0"]
    assert scores.formatted_predictions(logits) == ["0.1000", "3.0000"]
    top = classes.text_predictions(["a", "b"], logits, 1)
    assert [p["top_k"][0]["label"] for p in top] == ["pos", "neg"]
    assert classes.describe_text_prediction(top[0])[0].endswith("  pos")
    scored = scores.text_predictions(["a", "b"], logits, 1)
    assert scored[1] == {"text": "b", "score": 3.0} and scores.describe_text_prediction(scored[1]) == ["  score 3.000"]
    assert classes.follows(logits, logits) == {"agreement_with_fp32": 1.0}
    assert scores.follows(logits, logits) == {"pearson_with_fp32": pytest.approx(1.0)}
    assert classes.describe_follows({"agreement_with_fp32": 0.5}) == "predictions agree on 50.00%"
    metrics = classes.metrics([1, 1], logits)
    assert metrics["accuracy"] == 0.5 and "expected_calibration_error" in metrics
    assert scores.metrics([0.0, 3.0], logits)["pearson"] == pytest.approx(1.0)
    assert "confusion matrix" in classes.format_metrics(metrics)
    assert classes.main_metric == "accuracy" and scores.main_metric == "pearson"
    assert [key for _, key in scores.table_rows] == list(scores.card_metrics) == ["pearson", "spearman", "mse"]
    assert classes.averaging_note({"average": "binary"})[1].startswith("F1, precision and recall are those of the "
                                                                       "label `pos`")
    assert scores.pipeline_returns() == "the predicted score (label 'score')"
