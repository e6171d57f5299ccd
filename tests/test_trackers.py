"""--report_to: TensorBoard by default when installed (its curves: test_datasets_reports.py), none turns
logging off, and a tracker whose package is missing is a one-line error before anything loads."""

import importlib.util
import re

import pytest
from helpers import FAST_TRAINING, run_script

from kd_bert import DataConfig, TrainConfig, UserError


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


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_a_missing_tracker_package_is_one_line_and_exit_2(tmp_path):
    result = run_script("trainer_teacher.py", "--output_dir", tmp_path, "--report_to", "tensorboard", "mlflow")
    assert result.returncode == 2, result
    assert result.stderr == "error: --report_to mlflow needs its package: pip install mlflow\n"
    assert not any(tmp_path.iterdir())


def test_report_to_none_writes_no_runs_folder(tmp_path, sst2_slice, tiny_models):
    from kd_bert import train_teacher
    from kd_bert.train.accelerator import trackers

    assert trackers(None) == (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
    flags = dict(zip(FAST_TRAINING[::2], FAST_TRAINING[1::2]))
    data = DataConfig(data_path=str(sst2_slice), max_length=int(flags["--max_length"]))
    train = TrainConfig(output_dir=str(tmp_path), num_train_epochs=1, max_train_samples=64,
                        batch_size=int(flags["--batch_size"]), report_to=["none"])
    result = train_teacher(str(tiny_models["teacher_base"]), data, train)
    assert (result.model_dir / "model.safetensors").is_file()
    assert not (tmp_path / "runs").exists()
