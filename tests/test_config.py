"""The configs, as the Python API builds them and the flags fill them: text in a flag's text form is
converted as the flag converts it, a Path is a path, and a value that cannot work (1.5 epochs, an
infinite learning rate, an unknown or missing tracker, a seed out of range, the removed torch int8) is
refused when the config is built, with the scripts' messages; on the command line, in one line, with
nothing written."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest
from helpers import assert_clean_failure, run_script, teacher_in_process

from kd_bert import DataConfig, DistillConfig, EvalConfig, TrainConfig, UserError


def test_text_forms_become_what_the_flags_make():
    assert DataConfig(label_names="negative,positive").label_names == ["negative", "positive"]
    assert EvalConfig(text="a gorgeous, witty film").text == ["a gorgeous, witty film"]
    assert TrainConfig(num_train_epochs="3").num_train_epochs == 3
    assert TrainConfig(learning_rate="1e-4").learning_rate == 1e-4
    assert TrainConfig(report_to="none").report_to == ["none"]
    assert DistillConfig(layer_map="2,4").layer_map == [2, 4]
    assert TrainConfig(checkpointing_steps=500).checkpointing_steps == "500"


def test_paths_are_taken_as_text(tmp_path):
    data = DataConfig(data_path=tmp_path / "data")
    train = TrainConfig(output_dir=tmp_path / "out")
    distill = DistillConfig(teacher_model=tmp_path / "teacher", cache_dir=tmp_path / "cache")
    evaluation = EvalConfig(model=tmp_path / "model", output=tmp_path / "m.json")
    assert data.data_path == str(tmp_path / "data") and train.output_dir == str(tmp_path / "out")
    assert distill.teacher_model == str(tmp_path / "teacher") and distill.cache_dir == str(tmp_path / "cache")
    assert evaluation.model == str(tmp_path / "model") and evaluation.output == str(tmp_path / "m.json")
    assert all(isinstance(v, str) for v in (data.data_path, train.output_dir, evaluation.model))


# ---------------------------------------------------------------- refused when built


@pytest.mark.parametrize("build, message", [
    (lambda: TrainConfig(num_train_epochs=1.5), "--num_train_epochs must be a whole number (got 1.5)"),
    (lambda: TrainConfig(batch_size="many"), "--batch_size must be a whole number (got 'many')"),
    (lambda: TrainConfig(num_train_epochs=True), "--num_train_epochs must be a whole number (got True)"),
    (lambda: TrainConfig(report_to="tensorbord"), "--report_to must be one of tensorboard, wandb, mlflow, none"),
    (lambda: TrainConfig(head="max_pool"), "--head must be one of cls, mean_pool (got 'max_pool')"),
    (lambda: TrainConfig(overwrite_output_dir="yes"), "--overwrite_output_dir must be true or false"),
    (lambda: TrainConfig(output_dir=None), "--output_dir needs a value (got None)"),
    (lambda: DataConfig(label_names="negative"), "--label_names: give at least two comma-separated names"),
    (lambda: DataConfig(max_length=[64]), "--max_length must be a whole number"),
    (lambda: DistillConfig(layer_map="2,x"), "--layer_map: expected comma-separated integers"),
    (lambda: EvalConfig(model=3.5), "--model must be text (got 3.5)"),
])
def test_a_value_no_flag_could_give_is_refused_when_built(build, message):
    with pytest.raises(UserError, match=re.escape(message)):
        build()


@pytest.mark.parametrize("build, message", [
    (lambda: TrainConfig(learning_rate=0), "--learning_rate must be positive (got 0); try 2e-5"),
    (lambda: TrainConfig(checkpointing_steps="often"), "--checkpointing_steps must be a number of batches"),
    (lambda: TrainConfig(mixed_precision="fp8"), "--mixed_precision must be one of auto, no, fp16, bf16"),
    (lambda: DataConfig(validation_split=1.0), "--validation_split must be in [0, 1)"),
    (lambda: DataConfig(max_length=4), "--max_length must be at least 8 tokens"),
    (lambda: DistillConfig(alpha=1.5), "--alpha must be in [0, 1]"),
    (lambda: DistillConfig(hidden_weight=-1), "--hidden_weight must be 0 or more"),
    (lambda: EvalConfig(save_quantized="q"), "--save_quantized writes the model --quantize makes"),
    (lambda: EvalConfig(top_k=0), "--top_k must be at least 1"),
])
def test_a_config_that_cannot_work_is_refused_when_built(build, message):
    with pytest.raises(UserError, match=re.escape(message)):
        build()


FLOATS = [(TrainConfig, name) for name in ("learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm",
                                                                   "selection_split")] + \
    [(DataConfig, "validation_split")] + \
    [(DistillConfig, name) for name in ("temperature", "alpha", "embedding_weight", "hidden_weight",
                                        "attention_weight", "cos_weight", "augment_replace")]


@pytest.mark.parametrize("config, name", FLOATS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "inf", "nan"])
def test_every_float_setting_must_be_finite(config, name, value):
    with pytest.raises(UserError, match=rf"^--{name} must be a finite number \(got (-?inf|nan)\)$"):
        config(**{name: value})


def test_every_float_flag_is_checked():
    """The list above covers every float flag: a new one is checked too, or this fails."""
    declared = {(c, f.name) for c in (TrainConfig, DataConfig, DistillConfig, EvalConfig)
                for f in c.__dataclass_fields__.values() if f.metadata.get("argparse", {}).get("type") is float}
    assert declared == set(FLOATS)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range(seed):
    with pytest.raises(UserError, match=f"--seed must be between 0 and {2**32 - 1} \\(got {seed}\\)"):
        TrainConfig(seed=seed)


@pytest.mark.parametrize("report_to, message", [
    (["wandb"], "--report_to wandb needs its package: pip install wandb"),
    (["tensorboard", "mlflow", "wandb"], "--report_to wandb mlflow needs its package: pip install wandb mlflow"),
    (["none", "tensorboard"], "--report_to none turns logging off; give it alone (got none tensorboard)"),
])
def test_a_tracker_that_cannot_log_is_refused_when_the_config_is_built(monkeypatch, report_to, message):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # as if wandb and mlflow were not installed
                        lambda name, *a: None if name in ("wandb", "mlflow") else find_spec(name, *a))
    with pytest.raises(UserError, match=re.escape(message)):
        TrainConfig(report_to=report_to)


# ---------------------------------------------------------------- refused on the command line, in one line


def test_an_infinite_learning_rate_on_the_command_line_leaves_the_model_alone(sst2_slice, trained_teacher,
                                                                             tiny_models, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained_teacher, out / "teacher")
    before = {p.name: p.read_bytes() for p in (out / "teacher").iterdir()}
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--overwrite_output_dir",
                        "--learning_rate", "inf", "--num_train_epochs", "1", "--max_train_samples", "16")
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: --learning_rate must be a finite number (got inf)", result
    assert {p.name: p.read_bytes() for p in (out / "teacher").iterdir()} == before
    assert Path(out / "teacher").is_dir()


@pytest.mark.parametrize("flag,value,phrase", [
    ("--temperature", "0", "--temperature must be positive"),
    ("--temperature", "-2", "--temperature must be positive"),
    ("--alpha", "1.5", "--alpha must be in [0, 1]"),
    ("--alpha", "-0.1", "--alpha must be in [0, 1]"),
    ("--learning_rate", "-1", "--learning_rate must be positive"),
    ("--validation_split", "1.5", "--validation_split must be in [0, 1)"),
    ("--save_total_limit", "0", "--save_total_limit must be at least 1"),
    ("--seed", "-1", "--seed must be between 0 and 4294967295"),
])
def test_invalid_flag_values(flag, value, phrase, tmp_path):
    result = run_script("distilled-bert.py", flag, value, "--output_dir", tmp_path / "out")
    assert_clean_failure(result, phrase, output_dir=tmp_path / "out")


@pytest.mark.parametrize("value", ["0", "often"])
def test_bad_checkpointing_steps(value, tmp_path, capsys, monkeypatch):
    status, stderr = teacher_in_process(["--checkpointing_steps", value, "--output_dir", tmp_path / "out"], capsys,
                                        monkeypatch)
    assert status == 2 and "error: --checkpointing_steps must be" in stderr, stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_a_missing_tracker_package_is_one_line_and_exit_2(tmp_path):
    result = run_script("trainer_teacher.py", "--output_dir", tmp_path, "--report_to", "tensorboard", "mlflow")
    assert result.returncode == 2, result
    assert result.stderr == "error: --report_to mlflow needs its package: pip install mlflow\n"
    assert not any(tmp_path.iterdir())


def test_torch_dynamic_int8_is_gone_with_a_pointer_to_onnx_int8(trained_teacher, sst2_slice):
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--quantize",
                        "dynamic-int8")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "--quantize onnx-int8" in result.stderr, result
