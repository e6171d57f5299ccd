"""The Python API: the README's example runs in one session, the API and the scripts write the same
model for the same seed, one session runs jobs in different precisions, and the entry layer stays thin
(--help loads no torch, no parsed flags below the scripts; the layers and their imports: test_layers.py)."""

import ast
import json
import re
import subprocess
import sys

import pytest
from helpers import FAST_TRAINING, REPO, package_modules

from kd_bert import DataConfig, EvalConfig, TrainConfig

TIMING = ("train_seconds", "train_samples_per_second", "total_train_seconds", "peak_memory_mb", "teacher_cache")


def readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```\n<!-- /api-example -->", readme, re.S)
    assert block, "README.md lost its API example"
    return block.group(1)


def without_timing(value):
    """A metrics document without the fields that measure time or memory."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_the_readme_example_runs_in_one_python_session(tmp_path, sst2_slice, tiny_models, capsys):
    from transformers import AutoModelForSequenceClassification

    code = (readme_example().replace('"bert-large-uncased"', repr(str(tiny_models["teacher_base"])))
            .replace('"./data/sst2"', repr(str(sst2_slice))).replace('"./models"', repr(str(tmp_path))))
    session: dict = {}
    exec(compile(code, "README.md", "exec"), session)
    teacher, run, scores = session["teacher"], session["run"], session["scores"]

    # The results are what was written to disk.
    assert teacher.model_dir == tmp_path / "teacher" and run.student.model_dir == tmp_path / "student"
    for result in (teacher, run.student, run.no_kd):
        assert result.metrics == json.loads((result.model_dir / "metrics.json").read_text())
        model = AutoModelForSequenceClassification.from_pretrained(result.model_dir)  # plain transformers
        assert model.config.id2label == {0: "negative", 1: "positive"}
    assert run.comparison == json.loads((tmp_path / "kd_vs_no_kd.json").read_text())
    assert run.no_kd.metrics["teacher_model"] is None and run.student.metrics["teacher_model"] == str(teacher.model_dir)
    # evaluate() scores the student it is given: on the same dev split it finds the accuracy that
    # the training run measured for the model it kept.
    assert scores.metrics["accuracy"] == pytest.approx(run.student.validation["accuracy"])
    assert scores.metrics["teacher"]["accuracy"] == pytest.approx(teacher.validation["accuracy"])
    assert 0 <= scores.metrics["agreement"] <= 1 and scores.metrics["num_examples"] == 120
    out = capsys.readouterr().out
    assert "agreement with the teacher" in out and "without the teacher" in out
    # Each run's log states the objective it optimized.
    assert "objective: 1 * ce" in out and "objective: 0.5 * kd_kl(T=2) + 0.5 * ce" in out


def test_the_api_and_the_script_save_the_same_model(trained_teacher, tmp_path, sst2_slice, tiny_models):
    """trained_teacher is trainer_teacher.py's run with FAST_TRAINING; the same settings through the
    API give the same weights, byte for byte, and the same metrics."""
    from kd_bert import train_teacher

    flags = dict(zip(FAST_TRAINING[::2], FAST_TRAINING[1::2]))
    data = DataConfig(data_path=str(sst2_slice), max_length=int(flags["--max_length"]))
    train = TrainConfig(output_dir=str(tmp_path), num_train_epochs=int(flags["--num_train_epochs"]),
                        batch_size=int(flags["--batch_size"]), learning_rate=float(flags["--learning_rate"]))
    result = train_teacher(str(tiny_models["teacher_base"]), data, train)
    assert (result.model_dir / "model.safetensors").read_bytes() == (trained_teacher / "model.safetensors").read_bytes()
    script_metrics = json.loads((trained_teacher / "metrics.json").read_text())
    assert without_timing(result.metrics) == without_timing(script_metrics)
    recorded = json.loads((result.model_dir / "training_args.json").read_text())["args"]
    assert recorded["learning_rate"] == 1e-3 and recorded["data_path"] == str(sst2_slice)


@pytest.mark.parametrize("script", ["trainer_teacher.py", "distilled-bert.py", "evaluate.py"])
def test_help_answers_without_loading_torch(script):
    probe = (f"import runpy, sys; sys.argv = [{script!r}, '--help']\n"
             f"try:\n    runpy.run_path({script!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('loaded:', sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert "--output_dir" in out or "--model" in out  # the help was printed
    assert out.strip().endswith("loaded: []")


def test_below_the_entry_layer_no_function_takes_parsed_flags():
    for name, tree in package_modules().items():
        if name in ("cli", "__main__"):
            continue
        params = [a.arg for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for a in node.args.args + node.args.kwonlyargs]
        assert "args" not in params, f"kd_bert/{name.replace('.', '/')}.py has a function taking `args`"


@pytest.mark.precision
def test_one_session_can_run_jobs_in_different_precisions(trained_teacher, sst2_slice):
    """Accelerate keeps its precision in process-wide state; each job starts from a clean one."""
    from kd_bert import evaluate

    data = DataConfig(data_path=str(sst2_slice), max_length=64)
    scores = {mode: evaluate(EvalConfig(model=str(trained_teacher), mixed_precision=mode, latency_samples=0), data)
              for mode in ("no", "bf16", "no")}
    assert scores["no"].metrics["mixed_precision"] == "no" and scores["bf16"].metrics["mixed_precision"] == "bf16"
    assert abs(scores["no"].metrics["accuracy"] - scores["bf16"].metrics["accuracy"]) <= 0.05
