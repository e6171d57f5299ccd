"""Faults in the files users bring, each answered by one line (exit 2, nothing written) or, for a row,
by --on_bad_rows: a nan score, a column named twice, a stray quote, a huge field, a broken JSONL line,
text that is not UTF-8, a wrong --transfer_data; and evaluate.py holding out what its model's run held
out. Messages that list values stay one readable line."""

import json

import pytest
from helpers import one_line, run_script

from kd_bert import (
    DataConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    evaluate,
    train_teacher,
)

# ---------------------------------------------------------------- evaluate.py's validation split


def test_evaluate_holds_out_what_the_models_run_held_out(sst2_slice, tiny_models, tmp_path):
    """A model trained with --validation_split 0.05 on data without a dev split: evaluate.py, the flag
    left out, scores the 16 examples its run held out (the training run's own validation numbers);
    given another fraction, it says loudly that some scored examples were trained on."""
    data = tmp_path / "no-dev"
    data.mkdir()
    for name in ("train.tsv", "labels.txt"):
        (data / name).write_bytes((sst2_slice / name).read_bytes())
    trained = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(data), max_length=32,
                                                                          validation_split=0.05),
                            TrainConfig(output_dir=str(tmp_path / "run"), num_train_epochs=1, batch_size=16,
                                        learning_rate=1e-3, report_to=["none"], mixed_precision="no"))
    assert trained.metrics["eval_examples"] == 16
    common = ["--model", trained.model_dir, "--data_path", data, "--max_length", "32", "--latency_samples", "0",
              "--mixed_precision", "no"]
    same = run_script("evaluate.py", *common, "--output", tmp_path / "same.json")
    assert same.returncode == 0, same
    scored = json.loads((tmp_path / "same.json").read_text())
    assert scored["num_examples"] == 16 and "warning" not in same.stdout + same.stderr
    assert scored["confusion_matrix"] == trained.validation["confusion_matrix"]
    assert "the 5% held out is the fraction" in same.stdout

    other = run_script("evaluate.py", *common, "--validation_split", "0.1", "--output", tmp_path / "other.json")
    assert other.returncode == 0, other
    assert json.loads((tmp_path / "other.json").read_text())["num_examples"] == 32
    [warning] = [line for line in (other.stdout + other.stderr).splitlines() if line.startswith("warning: ")]
    assert "--validation_split 0.1 differs from the 0.05" in one_line(warning) and "trained on" in warning


def test_evaluate_refuses_a_validation_split_of_data_its_model_trained_on_whole(sst2_slice, tiny_models, tmp_path):
    data = tmp_path / "no-dev"
    data.mkdir()
    for name in ("train.tsv", "labels.txt"):
        (data / name).write_bytes((sst2_slice / name).read_bytes())
    trained = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(data), max_length=32,
                                                                          validation_split=0),
                            TrainConfig(output_dir=str(tmp_path / "run"), num_train_epochs=1, batch_size=32,
                                        max_train_samples=64, report_to=["none"], mixed_precision="no"))
    with pytest.raises(UserError, match=r"trained on all of the train split .*\(--validation_split 0"):
        evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                 DataConfig(data_path=str(data), max_length=32))
    # Asked for, it is carved, with the warning.
    result = evaluate(EvalConfig(model=str(trained.model_dir), latency_samples=0),
                      DataConfig(data_path=str(data), max_length=32, validation_split=0.1))
    assert result.metrics["num_examples"] == 32
