"""The checks made on the training data before training: a validation label the training split never has
is refused (by id or by name, and for the whole split when a sample was drawn from it), one class is
refused, and rare classes and validation examples also in train are counted."""

import pytest
from helpers import assert_clean_failure, intents_csv, logged, long_lines, run_script

from kd_bert.data.checks import FEW_EXAMPLES, check_training_data
from kd_bert.data.read import TextSplit
from kd_bert.errors import UserError


def test_ids_with_label_names_get_the_same_checks():
    train = TextSplit("train", ["a", "b", "c"], [0, 1, 0])
    dev = TextSplit("validation", ["d", "e"], [2, 1])
    with pytest.raises(UserError, match=r"'validation' split has label\(s\) 'maybe' \(1 row\) that the 'train' split "
                                        r"never has"):
        check_training_data(train, dev, ["no", "yes", "maybe"])


def test_one_class_is_refused_and_rare_classes_and_leakage_are_counted():
    with pytest.raises(UserError, match=r"one class only \('yes', 3 examples\)"):
        check_training_data(TextSplit("train", ["a", "b", "c"], [1, 1, 1]), None, ["no", "yes"])
    train = TextSplit("train", [f"t{i}" for i in range(12)], [0] * 10 + [1] * 2)
    dev = TextSplit("validation", ["t0", "t11", "new"], [0, 1, 0])
    with logged() as said:
        report = check_training_data(train, dev, ["no", "yes", "rare"])
    assert report == {"rare_classes": {"yes": 2, "rare": 0}, "validation_in_train": 2}
    assert any(f"fewer than {FEW_EXAMPLES}" in line and "'yes' (2)" in line for line in said)
    assert any("2 of 3 'validation' examples also appear" in line for line in said)


def test_a_validation_label_the_whole_training_split_lacks_is_still_refused(tiny_models, tmp_path):
    names = intents_csv(tmp_path / "intents" / "train.csv", 77, 10)
    dev = ["text,intent"] + [f"a text {i},{names[i % 77]}" for i in range(77)] + ["another text,not_an_intent"]
    (tmp_path / "intents" / "dev.csv").write_text("\n".join(dev) + "\n")
    (tmp_path / "intents" / "labels.txt").write_text("\n".join(names + ["not_an_intent"]) + "\n")
    out = tmp_path / "out"
    result = run_script("trainer_teacher.py", "--data_path", tmp_path / "intents", "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--max_train_samples", "100",
                        "--num_train_epochs", "1", "--max_length", "16")
    assert_clean_failure(result, "'not_an_intent' (1 row)", "never has (78 labels)", output_dir=out)
    assert not long_lines(result), long_lines(result)
