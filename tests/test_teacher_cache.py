"""Teacher logits are computed once, reused while nothing they depend on changes, and exact."""

import json
import shutil

import pytest

from conftest import run_script

COMMON = ["--num_train_epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3", "--max_length", "64"]


def distill(sst2_slice, teacher, student, out, *extra):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--student_model", student, "--output_dir", out, *COMMON, *extra)
    assert result.returncode == 0, result
    return json.loads((out / "student" / "metrics.json").read_text()), result


def cache_files(folder):
    return sorted((folder / "teacher_logits").glob("*.pt"))


def test_cached_and_online_runs_agree_and_the_cache_is_reused(sst2_slice, trained_teacher, tiny_models, tmp_path):
    cache = tmp_path / "cache"
    args = (sst2_slice, trained_teacher, tiny_models["student_base"])
    first, out = distill(*args, tmp_path / "a", "--cache_dir", cache)
    assert first["teacher_logits"] == "cached" and first["teacher_cache"]["reused"] is False
    assert "computed and cached" in out.stdout
    [file] = cache_files(cache)
    written = file.stat().st_mtime_ns

    second, out = distill(*args, tmp_path / "b", "--cache_dir", cache)
    assert second["teacher_cache"]["reused"] is True and "reused" in out.stdout
    assert cache_files(cache) == [file] and file.stat().st_mtime_ns == written

    online, _ = distill(*args, tmp_path / "c", "--teacher_logits", "online")
    assert online["teacher_logits"] == "online" and "teacher_cache" not in online
    # Equal up to float rounding: the teacher's batches are padded to other lengths in the two modes.
    for run in (first, second):
        for cached_epoch, online_epoch in zip(run["history"], online["history"], strict=True):
            assert cached_epoch["train_loss"] == pytest.approx(online_epoch["train_loss"], rel=1e-5, abs=1e-6)
            assert cached_epoch["train_kd_loss"] == pytest.approx(online_epoch["train_kd_loss"], rel=1e-5, abs=1e-6)
            assert cached_epoch["eval"]["accuracy"] == online_epoch["eval"]["accuracy"]


@pytest.mark.parametrize("change", ["max_train_samples", "max_length", "teacher_weights"])
def test_a_changed_key_rebuilds_the_cache(change, sst2_slice, trained_teacher, tiny_models, tmp_path):
    cache = tmp_path / "cache"
    teacher = tmp_path / "teacher"
    shutil.copytree(trained_teacher, teacher)
    base = ["--cache_dir", cache, "--num_train_epochs", "1", "--max_train_samples", "96"]
    distill(sst2_slice, teacher, tiny_models["student_base"], tmp_path / "a", *base)
    if change == "max_train_samples":
        extra = ["--max_train_samples", "64"]
    elif change == "max_length":
        extra = ["--max_length", "16"]
    else:  # the same architecture with other weights: fine-tune the teacher one more epoch
        result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path", teacher,
                            "--output_dir", tmp_path / "retrained", "--num_train_epochs", "1", "--max_train_samples", "64")
        assert result.returncode == 0, result
        teacher = tmp_path / "retrained" / "teacher"
        extra = []
    metrics, _ = distill(sst2_slice, teacher, tiny_models["student_base"], tmp_path / "b", *base, *extra)
    assert metrics["teacher_cache"]["reused"] is False
    assert len(cache_files(cache)) == 2
    described = [json.loads(p.with_suffix(".json").read_text()) for p in cache_files(cache)]
    assert all({"teacher_weights", "teacher_tokenizer", "max_length", "num_examples", "teacher_inputs"} <= set(d)
               for d in described)


def test_padding_efficiency_is_logged_per_epoch(trained_teacher):
    history = json.loads((trained_teacher / "metrics.json").read_text())["history"]
    assert all(0 < h["padding_efficiency"] <= 1 and h["peak_memory_mb"] > 0 for h in history)
