"""The Python API's configs take what the flags take and refuse the rest when built, with the scripts'
messages: text in a flag's text form is converted as the flag converts it, a Path is a path, and a
value no flag could give (1.5 epochs, an infinite learning rate, an unknown tracker) is refused."""

import math
import re
from pathlib import Path

import pytest
from helpers import run_script

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


FLOATS = [(TrainConfig, name) for name in ("learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm")] + \
    [(DataConfig, "validation_split")] + \
    [(DistillConfig, name) for name in ("temperature", "alpha", "embedding_weight", "hidden_weight",
                                        "attention_weight", "cos_weight")]


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
