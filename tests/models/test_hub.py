"""Where models come from: a hub id that cannot be fetched fails within seconds, a missing folder is named,
and a folder that names code of its own is refused before any of it runs."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import assert_clean_failure, distill_args, run_script


@pytest.mark.slow  # a fresh process that waits on the hub's answer, about 5 s each; CI runs it with -m slow
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


CUSTOM_CODE = """from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the folder's code ran")
from transformers import BertConfig
class EvilConfig(BertConfig):
    model_type = "evil-bert"
"""


def folder_with_code(source: Path, target: Path, model_type: str) -> Path:
    """A copy of a model folder whose config.json names code of its own (auto_map), which leaves a file
    IMPORTED beside it when it runs."""
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilConfig"}
    (target / "config.json").write_text(json.dumps(config))
    (target / "evil.py").write_text(CUSTOM_CODE)
    return target


@pytest.mark.parametrize("model_type", ["evil-bert", "bert"])
def test_a_model_folder_that_names_its_own_code_is_refused_before_it_loads(sst2_slice, trained_teacher, tiny_models,
                                                                          tmp_path, monkeypatch, model_type):
    from kd_bert import EvalConfig, UserError, evaluate

    evil = folder_with_code(trained_teacher, tmp_path / "evil", model_type)
    monkeypatch.setattr("builtins.input", lambda *args: "y")  # a user who answers transformers' question with y
    with pytest.raises(UserError, match="this project runs no code from a model folder"):
        evaluate(EvalConfig(model=str(evil), latency_samples=0))
    for flag in ("--teacher_model", "--student_model"):
        models = {"--teacher_model": trained_teacher, "--student_model": tiny_models["student_base"], flag: evil}
        result = run_script("distilled-bert.py", *distill_args(sst2_slice, models["--teacher_model"],
                                                               models["--student_model"], tmp_path / "out"))
        assert_clean_failure(result, f"{flag} {evil}", "auto_map" if model_type == "bert" else "model_type",
                             output_dir=tmp_path / "out")
    assert not (evil / "IMPORTED").exists()
