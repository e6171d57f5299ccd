"""--config FILE: a YAML or JSON file sets any flag, the command line overrides it, a bad key or value
is refused by name, and a run's training_args.json passed back repeats the run."""

import json
import re
import sys

import pytest
from helpers import parse, run_script

from kd_bert import UserError

YAML = """\
learning_rate: 1e-4          # YAML reads this as text; the flag's type makes it a number
num_train_epochs: 5
layer_map: [2, 4]
label_names: [negative, positive]
group_by_length: false
compare_no_kd: true
checkpointing_steps: 500
mixed_precision: "no"
report_to: tensorboard
"""


def test_a_yaml_file_sets_flags_of_every_kind(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "run.yaml").write_text(YAML)
    flags = parse("distilled-bert.py", tmp_path / "run.yaml")
    assert flags.learning_rate == 1e-4 and flags.num_train_epochs == 5
    assert flags.layer_map == [2, 4] and flags.label_names == ["negative", "positive"]
    assert flags.group_by_length is False and flags.compare_no_kd is True
    assert flags.checkpointing_steps == "500" and flags.mixed_precision == "no" and flags.report_to == ["tensorboard"]
    assert flags.temperature == 2.0  # what the file leaves out keeps its default


def test_the_command_line_overrides_a_json_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"learning_rate": "1e-4", "layer_map": "2,4", "group_by_length": False,
                                "batch_size": 8}))
    flags = parse("distilled-bert.py", path, "--learning_rate", "3e-5", "--group_by_length", "--layer_map", "1,3")
    assert flags.learning_rate == 3e-5 and flags.group_by_length is True and flags.layer_map == [1, 3]
    assert flags.batch_size == 8
    (tmp_path / "eval.json").write_text(json.dumps({"text": ["a gorgeous film", "dull"], "top_k": 2}))
    assert parse("evaluate.py", tmp_path / "eval.json").text == ["a gorgeous film", "dull"]


def test_a_training_args_json_is_read_for_its_args(tmp_path):
    path = tmp_path / "training_args.json"
    path.write_text(json.dumps({"role": "student", "args": {"temperature": 4.0, "layer_map": [2, 4],
                                                            "transfer_data": None}, "started": "2025-01-01"}))
    flags = parse("distilled-bert.py", path)
    assert flags.temperature == 4.0 and flags.layer_map == [2, 4] and flags.transfer_data is None


@pytest.mark.parametrize("script, values, message", [
    ("trainer_teacher.py", {"lerning_rate": 1e-3}, "unknown key for test_config_files: lerning_rate (did you mean "
                                                   "learning_rate?)"),
    ("trainer_teacher.py", {"temperature": 2.0, "alpha": 0.5}, "unknown keys for test_config_files: temperature (a "
                                                               "flag of another script), alpha (a flag of another "
                                                               "script)"),
    ("evaluate.py", {"config": "other.json"}, "unknown key for test_config_files: config"),
])
def test_unknown_keys_are_refused_by_name(tmp_path, monkeypatch, script, values, message):
    monkeypatch.setattr(sys, "argv", ["test_config_files"])  # the parser's prog, named in the message
    (tmp_path / "run.json").write_text(json.dumps(values))
    with pytest.raises(UserError, match=re.escape(message)):
        parse(script, tmp_path / "run.json")


@pytest.mark.parametrize("values, message", [
    ({"num_train_epochs": "three"}, "num_train_epochs must be an integer (got 'three')"),
    ({"learning_rate": [1, 2]}, "learning_rate takes one value"),
    ({"kd_loss": "l2"}, "kd_loss must be one of kl, mse (got 'l2')"),
    ({"layer_map": "2,x"}, "layer_map: expected comma-separated integers"),
    ({"group_by_length": "yes"}, "group_by_length must be true or false (got 'yes')"),
    ({"mixed_precision": False}, "mixed_precision is not a true/false flag (got False); YAML reads yes, no"),
    ({"batch_size": None}, "batch_size needs a value (got null)"),
])
def test_a_bad_value_is_refused_with_its_flag(tmp_path, values, message):
    (tmp_path / "run.json").write_text(json.dumps(values))
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'run.json'}: {message}")):
        parse("distilled-bert.py", tmp_path / "run.json")


def test_unreadable_files_are_refused(tmp_path, monkeypatch):
    (tmp_path / "run.json").write_text("{learning_rate: 1}")
    (tmp_path / "run.yaml").write_text("learning_rate: 1\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "run.toml").write_text("")
    for name, message in [("run.json", "is not valid JSON"), ("list.json", "must hold a mapping of flag names"),
                          ("run.toml", "give a .json, .yaml or .yml file"), ("missing.json", "no such file")]:
        with pytest.raises(UserError, match=re.escape(message)):
            parse("evaluate.py", tmp_path / name)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(UserError, match=re.escape("which needs PyYAML: pip install pyyaml")):
        parse("evaluate.py", tmp_path / "run.yaml")


def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"temprature": 3}))
    result = run_script("distilled-bert.py", "--config", tmp_path / "run.json")
    assert result.returncode == 2, result
    assert result.stderr == f"error: {tmp_path / 'run.json'}: unknown key for distilled-bert.py: temprature " \
                            f"(did you mean temperature?)\n"


def test_training_args_json_repeats_the_run(trained_teacher, tmp_path):
    """The teacher's recorded settings passed back as --config, with another --output_dir, train the
    same model: same seed, same data order, same arithmetic on the same CPU."""
    old = json.loads((trained_teacher / "training_args.json").read_text())["args"]
    result = run_script("trainer_teacher.py", "--config", trained_teacher / "training_args.json",
                        "--output_dir", tmp_path)
    assert result.returncode == 0, result
    new = json.loads((tmp_path / "teacher" / "training_args.json").read_text())["args"]
    assert new == {**old, "output_dir": str(tmp_path)}
    assert (tmp_path / "teacher" / "model.safetensors").read_bytes() == \
        (trained_teacher / "model.safetensors").read_bytes()
