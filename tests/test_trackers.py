"""--report_to: TensorBoard by default when installed (its curves: test_datasets_reports.py), none turns
logging off, and a tracker whose package is missing is a one-line error before anything loads."""

import importlib.util
import re

import pytest
from helpers import run_script

from kd_bert import TrainConfig, UserError


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
