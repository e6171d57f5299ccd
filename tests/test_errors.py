"""Bad input: one line naming the problem and the fix, exit status 2, no traceback, no output folder."""

import pytest

from conftest import run_script


def assert_clean_failure(result, *phrases, output_dir=None):
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for phrase in phrases:
        assert phrase in lines[0], result
    if output_dir is not None:
        assert not output_dir.exists() or not any(output_dir.iterdir()), "a failed run left output behind"


def test_missing_data_path(tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", "--data_path", tmp_path / "nope", "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "no such file or folder", output_dir=tmp_path / "out")


def test_missing_text_column_lists_the_columns(sst2_slice, tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--text_column", "review",
                        "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "'review' not found", "sentence, label", "--text_column", output_dir=tmp_path / "out")


def test_label_outside_the_models_labels(trained_teacher, tmp_path):
    data = tmp_path / "three.csv"
    data.write_text("sentence,label\ngood,1\nbad,0\nmeh,2\n")
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", data)
    assert_clean_failure(result, "label '2'", "not one of the model's labels", "negative", "positive")


def test_teacher_whose_labels_differ_from_the_data(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--label_names", "positive,negative",
                        "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "label maps differ", "{0: positive, 1: negative}", output_dir=tmp_path / "out")


def test_evaluate_refuses_a_teacher_with_another_label_order(sst2_slice, trained_teacher, tmp_path):
    import json
    import shutil

    flipped = tmp_path / "flipped-teacher"
    shutil.copytree(trained_teacher, flipped)
    config = json.loads((flipped / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}
    config["label2id"] = {"positive": 0, "negative": 1}
    (flipped / "config.json").write_text(json.dumps(config))
    result = run_script("evaluate.py", "--model", trained_teacher, "--teacher", flipped, "--data_path", sst2_slice)
    assert_clean_failure(result, "label maps differ", "{0: positive, 1: negative}", "{0: negative, 1: positive}")


@pytest.mark.parametrize("offline", [True, False])
def test_unfetchable_hub_model_fails_within_seconds(sst2_slice, offline, tmp_path):
    env = {"HF_HUB_OFFLINE": "1"} if offline else {"HF_HUB_OFFLINE": "0"}
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        "kd-test-owner/no-such-model", "--output_dir", tmp_path / "out", env=env)
    assert_clean_failure(result, "kd-test-owner/no-such-model", "local model folder", output_dir=tmp_path / "out")
    assert result.seconds < 30  # not the half minute of retries a bare from_pretrained spends


def test_missing_teacher_folder(sst2_slice, tiny_models, tmp_path):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", tmp_path / "no-teacher",
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "no such model folder", output_dir=tmp_path / "out")


@pytest.mark.parametrize("flag,value,phrase", [
    ("--temperature", "0", "--temperature must be positive"),
    ("--alpha", "1.5", "--alpha must be in [0, 1]"),
    ("--learning_rate", "-1", "--learning_rate must be positive"),
])
def test_invalid_flag_values(flag, value, phrase, tmp_path):
    result = run_script("distilled-bert.py", flag, value, "--output_dir", tmp_path / "out")
    assert_clean_failure(result, phrase, output_dir=tmp_path / "out")


def test_fp16_without_a_gpu(sst2_slice, tiny_models, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp16 is valid where CUDA is available")
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--mixed_precision", "fp16", "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "fp16 needs a CUDA GPU", "--mixed_precision no", output_dir=tmp_path / "out")
