"""The sweep's space: --search NAME=SPEC read against the distillation flags, each end checked as its flag
checks a value, and the same space from a --config file."""

from __future__ import annotations

import pytest
from helpers import load_script, one_line

from kd_bert import DataConfig, DistillConfig, TrainConfig, UserError, cli
from kd_bert.jobs.distill import plan_distillation
from kd_bert.search.space import CHOICE, FLOAT, INT, apply, check_space, every_setting, parse_space, size_of


def test_ranges_log_scales_whole_numbers_and_choices():
    alpha, rate, epochs, augment, group = parse_space(
        ["alpha=0.1:1.0", "learning_rate=1e-5:3e-4:log", "num_train_epochs=1:4", "augment=0,1,2",
         "group_by_length=true,false"])
    assert (alpha.kind, alpha.low, alpha.high, alpha.log) == (FLOAT, 0.1, 1.0, False)
    assert (rate.kind, rate.log) == (FLOAT, True)
    assert (epochs.kind, epochs.low, epochs.high) == (INT, 1, 4)  # a whole-number flag gives whole numbers
    assert (augment.kind, augment.choices) == (CHOICE, (0, 1, 2))  # read as --augment reads its text
    assert group.choices == (True, False)


class FixedTrial:
    """What an Optuna trial answers, here the low end of each range and the first choice."""

    def suggest_float(self, name, low, high, log=False):
        return low

    def suggest_int(self, name, low, high, log=False):
        return low

    def suggest_categorical(self, name, choices):
        return choices[0]


def test_a_trials_settings_reach_the_configs_it_runs():
    dims = parse_space(["alpha=0.2:0.9", "learning_rate=1e-5:3e-4:log", "augment=2,0", "max_length=32,64"])
    params = {d.name: d.suggest(FixedTrial()) for d in dims}
    distill, data, train = apply(params, DistillConfig(), DataConfig(), TrainConfig())
    assert (distill.alpha, distill.augment, train.learning_rate, data.max_length) == (0.2, 2, 1e-5, 32)


@pytest.mark.parametrize("spec, phrase", [
    ("alpha", "write NAME=LOW:HIGH"),
    ("alpah=0:1", "alpah is no flag of distilled-bert.py"),
    ("debug=true,false", "--debug says how the script reports errors, not how a trial distills"),
    ("config=a.yaml,b.yaml", "--config says where the script reads its flags"),
    ("output_dir=a,b", "pass --output_dir to set it"),
    ("teacher_model=a,b", "pass --teacher_model to set it"),
    ("alpha=0.5", "at least two choices"),
    ("alpha=1:0.1", "LOW must be below HIGH"),
    ("learning_rate=0:1e-3:log", "log scale needs LOW above 0"),
    ("alpha=0.1:1:cube", "LOW:HIGH:log or LOW:HIGH:int"),
    ("kd_loss=0:1", "--kd_loss is not a number"),
    ("kd_loss=kl,huber", "huber is not one of --kd_loss's choices"),
    ("augment=0,one", "--augment takes whole numbers"),
    ("augment=1,1", "a choice is given twice"),
])
def test_a_bad_space_is_named(spec, phrase):
    with pytest.raises(UserError) as caught:
        parse_space([spec])
    assert phrase in one_line(str(caught.value))


def test_a_space_of_choices_and_whole_numbers_counts_its_settings():
    choices = parse_space(["augment=0,1,2", "num_train_epochs=1:4"])
    assert size_of(choices) == 12 and len(list(every_setting(choices))) == 12
    assert {"augment": 2, "num_train_epochs": 4} in every_setting(choices)
    assert size_of(parse_space(["augment=0,1,2", "alpha=0.1:1.0"])) is None  # a range of numbers is endless


def test_a_setting_named_twice_is_refused():
    with pytest.raises(UserError, match="names alpha twice"):
        parse_space(["alpha=0.1:0.5", "alpha=0.5:1"])


@pytest.mark.parametrize("spec, flags, phrase", [
    ("alpha=0.1:1.5", {}, "--alpha must be in [0, 1]"),
    ("temperature=0:8", {}, "--temperature must be positive"),
    ("warmup_ratio=0:1", {}, "--warmup_ratio must be in [0, 1)"),
    ("augment=0,2", {"alpha": 0.0}, "--augment adds sentences that only the teacher can label"),
    ("alpha=0:1", {"augment": 1}, "--augment adds sentences that only the teacher can label"),
])
def test_every_end_of_the_space_is_checked_as_its_flag_checks_it(spec, flags, phrase):
    distill = DistillConfig(**flags)
    with pytest.raises(UserError) as caught:
        check_space(parse_space([spec]), distill, DataConfig(), TrainConfig(), plan_distillation)
    assert phrase in str(caught.value) and spec.split("=")[0] in str(caught.value)


def test_the_space_from_a_config_file(tmp_path):
    parser = load_script("sweep.py").parse_args()
    listed = tmp_path / "listed.yaml"
    listed.write_text('search: ["alpha=0.1:1.0", "augment=0,1"]\ntrials: 5\n')
    assert cli.parse(parser, ["--config", str(listed)]).search == ["alpha=0.1:1.0", "augment=0,1"]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('search:\n  temperature: "1:8"\n  augment: [0, 1, 2]\n')
    flags = cli.parse(load_script("sweep.py").parse_args(), ["--config", str(mapping)])
    assert parse_space(flags.search)[1].choices == (0, 1, 2)
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text("search:\n  temperature: 1:8\n")  # YAML 1.1 reads this as 68
    with pytest.raises(UserError, match="quoted text"):
        cli.parse(load_script("sweep.py").parse_args(), ["--config", str(unquoted)])


def test_student_choices_set_the_kind_its_layers_and_its_own_learning_rate():
    (student,) = parse_space(["student=first_layers:2,teacher_layers:3,bilstm@3e-3"])
    base = DistillConfig(student_model="some/checkpoint"), DataConfig(), TrainConfig(learning_rate=1e-4)
    first, copied, bilstm = (apply({"student": choice}, *base) for choice in student.choices)
    assert (first[0].student_init, first[0].student_layers, first[2].learning_rate) == ("first_layers", "2", 1e-4)
    assert (copied[0].student_init, copied[0].student_layers) == ("teacher_layers", "3")
    assert (bilstm[0].student_model, bilstm[0].student_layers, bilstm[2].learning_rate) == ("bilstm", None, 3e-3)
    assert size_of([student]) == 3


@pytest.mark.parametrize("specs, phrase", [
    (["student=first_layers:1,tiny"], "tiny is no kind of student"),
    (["student=bilstm:2,first_layers:1"], "keeps no layers"),
    (["student=first_layers:0,bilstm"], "at least 1"),
    (["student=bilstm@fast,first_layers:1"], "@LR is the student's learning rate"),
    (["student=bilstm"], "at least two students"),
    (["student=bilstm,first_layers:2", "student_layers=1,2"], "student= alone"),
    (["student=bilstm@1e-3,first_layers:2", "learning_rate=1e-5:1e-4"], "student= alone"),
])
def test_a_student_space_that_cannot_work_is_named(specs, phrase):
    with pytest.raises(UserError, match=phrase):
        parse_space(specs)
