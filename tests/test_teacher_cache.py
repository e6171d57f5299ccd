"""Teacher logits are computed once, reused while nothing they depend on changes, and exact."""

import json
import shutil

import pytest
from helpers import nudged_copy, run_script

from kd_bert.data.splits import Sample, draw_sample

COMMON = ["--num_train_epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3", "--max_length", "64"]


def distill(sst2_slice, teacher, student, out, *extra):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--student_model", student, "--output_dir", out, *COMMON, *extra)
    assert result.returncode == 0, result
    return json.loads((out / "student" / "metrics.json").read_text()), result


def cache_files(folder):
    return sorted((folder / "teacher_logits").glob("*.pt"))


@pytest.mark.precision
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


def run_in_process(sst2_slice, teacher, student, out, cache, **changes):
    """A 1-epoch distillation on 96 sentences through the API (no subprocess); `changes` override its
    DistillConfig, DataConfig or TrainConfig settings."""
    from kd_bert import DataConfig, DistillConfig, TrainConfig
    from kd_bert import distill as run

    distill_args = dict(teacher_model=str(teacher), student_model=str(student), cache_dir=str(cache))
    data_args = dict(data_path=str(sst2_slice), max_length=64)
    train_args = dict(output_dir=str(out), num_train_epochs=1, batch_size=16, max_train_samples=96,
                      report_to=["none"], mixed_precision="no")
    for name, value in changes.items():
        target = next(d for d, config in ((distill_args, DistillConfig), (data_args, DataConfig),
                                          (train_args, TrainConfig)) if name in config.__dataclass_fields__)
        target[name] = value
    run(DistillConfig(**distill_args), DataConfig(**data_args), TrainConfig(**train_args))


def test_a_changed_key_rebuilds_the_cache_and_other_settings_reuse_it(sst2_slice, trained_teacher, tiny_models,
                                                                      tmp_path):
    """Real runs sharing one cache: each thing the teacher's logits depend on, changed alone, adds a cache
    file, and a run that changes only alpha, temperature and output folder adds none and leaves the
    file untouched. The texts case keeps the number of sentences, so that only the input digest tells it
    apart; so does the seed, with which --max_train_samples draws other sentences."""
    cache = tmp_path / "cache"
    student = tiny_models["student_base"]
    run = lambda name, teacher=trained_teacher, data=sst2_slice, **changes: run_in_process(  # noqa: E731
        data, teacher, student, tmp_path / name, cache, **changes)

    run("base")
    [file] = cache_files(cache)
    written = file.stat().st_mtime_ns
    run("sweep", alpha=0.8, temperature=4.0)
    assert cache_files(cache) == [file] and file.stat().st_mtime_ns == written

    edited = tmp_path / "edited-data"  # one training sentence reworded, as many sentences as before
    shutil.copytree(sst2_slice, edited)
    lines = (edited / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    # One of the 96 that --max_train_samples draws (the labels, and so the rows drawn, stay as they were).
    labels = [int(line.split("\t")[1]) for line in lines[1:]]
    drawn, _ = draw_sample(len(labels), labels, Sample("--max_train_samples", 96, 42), "training")
    line = 1 + drawn[3]
    lines[line] = "an entirely different sentence\t" + lines[line].split("\t")[1]
    (edited / "train.tsv").write_text("".join(lines), encoding="utf-8")
    retrained = nudged_copy(trained_teacher, tmp_path / "retrained")  # the same teacher with one weight nudged
    cased = tmp_path / "cased"  # a tokenizer that keeps case: the same ids for this lowercase data
    shutil.copytree(trained_teacher, cased)
    settings = json.loads((cased / "tokenizer_config.json").read_text())
    settings["do_lower_case"] = False
    (cased / "tokenizer_config.json").write_text(json.dumps(settings))

    rebuilds = {
        "texts": dict(data=edited),
        "max_train_samples": dict(max_train_samples=64),
        "seed": dict(seed=7),
        "max_length": dict(max_length=16),
        "teacher_weights": dict(teacher=retrained),
        "teacher_tokenizer": dict(teacher=cased),
        "precision": dict(mixed_precision="bf16"),
    }
    for count, (what, changes) in enumerate(rebuilds.items(), start=2):
        run(what, **changes)
        assert len(cache_files(cache)) == count, what
    described = [json.loads(p.with_suffix(".json").read_text()) for p in cache_files(cache)]
    assert all({"teacher_weights", "teacher_tokenizer", "max_length", "num_examples", "teacher_inputs"} <= set(d)
               for d in described)


def test_padding_efficiency_is_logged_per_epoch(trained_teacher):
    history = json.loads((trained_teacher / "metrics.json").read_text())["history"]
    assert all(0 < h["padding_efficiency"] <= 1 and h["peak_memory_mb"] > 0 for h in history)
