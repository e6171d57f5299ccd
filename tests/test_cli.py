"""The command line: --config FILE (YAML or JSON) sets any flag, the command line overrides it, a bad key or
value is refused by name, files that are ambiguous, malformed or hostile end in one short line, and a
run's training_args.json passed back repeats the run; the command printed to resume a stopped run; and a
CUDA out-of-memory error turned into advice."""

import json
import re
import shlex
import sys
import time

import pytest
from helpers import assert_clean_failure, load_script, parser_of, read_tsv, run_script

from kd_bert import UserError, cli

# ---------------------------------------------------------------- --config files


def parse(script, path, *argv):
    return cli.parse(parser_of(script), ["--config", str(path), *map(str, argv)])


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


# ---------------------------------------------------------------- files that are ambiguous, malformed or hostile


def refused(path, *phrases):
    with pytest.raises(UserError) as error:
        parse("distilled-bert.py", path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 300, message
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_flags_beside_an_args_mapping_are_refused_and_a_run_record_is_not(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"args": {"learning_rate": 1e-4}, "learning_rate": 3e-5, "alpha": 0.9}))
    refused(path, str(path), '"args" mapping', "learning_rate, alpha", "put every flag in args")
    # A training_args.json: its record of the run beside args (mixed_precision as resolved) sets nothing.
    path.write_text(json.dumps({"role": "student", "args": {"learning_rate": 1e-4, "mixed_precision": "auto"},
                                "started": "2024-01-01T00:00:00+00:00", "versions": {}, "device": "cpu",
                                "num_processes": 1, "mixed_precision": "no", "mixed_precision_reason": "cpu"}))
    flags = parse("distilled-bert.py", path)
    assert flags.learning_rate == 1e-4 and flags.mixed_precision == "auto"


def test_a_key_given_twice_is_refused(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "run.json").write_text('{"alpha": 0.5, "temperature": 2, "alpha": 0.9}')
    refused(tmp_path / "run.json", "the key 'alpha' is given twice")
    (tmp_path / "run.yaml").write_text("alpha: 0.5\ntemperature: 2\nalpha: 0.9\n")
    refused(tmp_path / "run.yaml", "the key 'alpha' is given twice (lines 1 and 3)")


def test_a_byte_order_mark_is_accepted_and_other_encodings_are_named(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"alpha": 0.9}).encode())
    assert parse("distilled-bert.py", path).alpha == 0.9
    path.write_bytes('{"student_model": "mod\u00e8le"}'.encode("latin-1"))
    refused(path, f"{path} is not UTF-8 text (byte 22 is 0xe8)", "save it as UTF-8")


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    pytest.importorskip("yaml")
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]  # 9**12 strings
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    refused(path, "line 2 uses the alias *a0", "without anchors and aliases")
    assert time.perf_counter() - start < 5
    result = run_script("evaluate.py", "--config", path)
    assert_clean_failure(result, "uses the alias")
    assert len(result.stderr) < 300


def test_long_or_deep_values_give_short_messages(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"learning_rate": "x" * 100_000}))
    refused(path, "learning_rate must be a number (got 'xxxx", "...")
    path.write_text(json.dumps({"y" * 100_000: 1}))
    refused(path, "unknown key")
    path.write_text("[" * 100_000 + "]" * 100_000)
    refused(path, "nested too deeply")
    path.write_text('{"alpha": "' + "x" * 100_000)
    refused(path, "is not valid JSON: Unterminated string")


# ---------------------------------------------------------------- the command that resumes a stopped run


PARSER = load_script("trainer_teacher.py").parse_args()
GIVEN = ["--data_path", "my data", "--output_dir", "out"]


@pytest.mark.parametrize("resume", [
    [],
    ["--resume_from_checkpoint"],
    ["--resume_from_checkpoint", "latest"],
    ["--resume_from_checkpoint", "models/checkpoints/teacher/step-7"],
    ["--resume_from_checkpoint=my models/step 7"],
    ["--resume", "old"],
    ["--resu=old"],
    ["--resume_from_checkpoint", "a", "--resume_from_checkpoint=b"],
])
def test_the_resume_command_replaces_any_resume_flag(resume):
    for argv in ([*resume, *GIVEN], [*GIVEN, *resume]):
        command = shlex.split(cli.resume_command(["trainer_teacher.py", *argv], PARSER))
        assert command[1:] == ["trainer_teacher.py", *GIVEN, "--resume_from_checkpoint", "latest"], command
        flags = PARSER.parse_args(command[2:])
        assert flags.resume_from_checkpoint == "latest" and flags.data_path == "my data"


def test_the_resume_command_of_the_installed_command_runs_it_without_python():
    argv = ["kd-bert", "teacher", "--resume_from_checkpoint", "old", *GIVEN]
    assert shlex.split(cli.resume_command(argv, PARSER, installed=True)) == [
        "kd-bert", "teacher", *GIVEN, "--resume_from_checkpoint", "latest"]


def test_the_resume_command_keeps_flags_that_only_look_alike():
    # --re is also the prefix of --report_to (argparse refuses it as ambiguous); --resume_from is no flag
    argv = ["x.py", "--re", "none", "--output_dir", "--resume_from_checkpoint-like folder"]
    assert shlex.split(cli.resume_command(argv, PARSER))[1:] == [*argv, "--resume_from_checkpoint", "latest"]


# ---------------------------------------------------------------- errors turned into advice


def test_cuda_out_of_memory_suggests_a_smaller_batch(capsys):
    import argparse

    import torch

    from kd_bert import cli

    def out_of_memory(args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    cli.add_debug_arg(parser)
    with pytest.raises(SystemExit) as stop:
        cli.run(out_of_memory, parser, [])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "out of memory" in message and "--batch_size 16" in message and "--gradient_accumulation_steps 2" in message


def test_verbose_adds_what_each_step_decided(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """--verbose once printed nothing more than the default. It adds detail lines: what each split holds
    once read, how the student was built, the teacher-logit cache's key, the first perturbed copies and
    the run's plan; the default run prints none of them."""
    common = ["--data_path", sst2_slice, "--teacher_model", trained_teacher, "--student_model",
              tiny_models["student_base"], "--num_train_epochs", "1", "--batch_size", "32", "--max_length", "32",
              "--augment", "1"]
    plain = run_script("distilled-bert.py", *common, "--output_dir", tmp_path / "plain")
    verbose = run_script("distilled-bert.py", *common, "--output_dir", tmp_path / "verbose", "--verbose")
    assert plain.returncode == 0 and verbose.returncode == 0, (plain, verbose)
    details = ["'train' of", "'validation' of", "student built by", "teacher-logit cache: key", "copy of sentence 0: ",
               "student: torch "]
    assert [d for d in details if d not in verbose.stdout] == [] and [d for d in details if d in plain.stdout] == []
    # The counts in the split lines are the files' own, counted here from the rows.
    for split, name in (("train", "train.tsv"), ("validation", "dev.tsv")):
        rows = read_tsv(sst2_slice / name)[1:]
        counts = {label: sum(r[1] == label for r in rows) for label in ("0", "1")}
        line = next(x for x in verbose.stdout.splitlines() if x.startswith(f"'{split}' of"))
        names = (sst2_slice / "labels.txt").read_text().split()
        assert f": {len(rows)} examples," in line and f"labels {names[0]} {counts['0']}, {names[1]} {counts['1']}" in line
    metrics = json.loads((tmp_path / "verbose" / "student" / "metrics.json").read_text())
    key = re.search(r"teacher-logit cache: key (\w+)", verbose.stdout)[1]
    assert key in json.dumps(metrics["teacher_cache"])
