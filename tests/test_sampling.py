"""--max_train_samples and --max_eval_samples draw seeded, stratified samples: the same rows for the
same seed and data in every script, every class of a class-sorted file, and a teacher-logit cache
entry and a resumption that follow the rows drawn."""

import pytest

from kd_bert import (
    DataConfig,
    TrainConfig,
    UserError,
)
from kd_bert.safety.checkpoints import check_same_run, run_args


def test_a_resumption_with_another_seed_or_sample_size_is_refused(tmp_path):
    """The rows drawn follow --seed and --max_train_samples, so a checkpoint of one cannot continue as
    the other."""
    settings = {**TrainConfig(max_train_samples=64, seed=5).to_flags(), **DataConfig().to_flags()}
    recorded = {"run_args": run_args(settings, "no", 1)}
    check_same_run(recorded, run_args(settings, "no", 1), tmp_path)
    for change in ({"seed": 6}, {"max_train_samples": 65}):
        with pytest.raises(UserError, match=f"--{next(iter(change))} "):
            check_same_run(recorded, run_args({**settings, **change}, "no", 1), tmp_path)
