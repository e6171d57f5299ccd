"""Teacher logits are computed once, in a per-user cache shared by every run, reused while nothing they
depend on changes, and exact: each part of the key changes it on its own, concurrent runs compute the
pass once, a damaged, truncated or blocked entry is computed again or refused in one line, and a full disk
leaves no part of an entry."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import REPO, Result, assert_clean_failure, distill_args, logged, nudged_copy, one_line, run_script

from kd_bert.data.splits import Sample, draw_sample
from kd_bert.distillation.teacher_cache import CACHE_ENV, default_cache_dir

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


# ---------------------------------------------------------------- what the key holds


def test_each_part_of_the_teacher_cache_key_changes_it_on_its_own(trained_teacher, tiny_models, tmp_path):
    """cache_key with one input varied at a time, the others as they were: the teacher's weights, its
    tokenizer, max_length, the texts (the same number of them), the number of examples
    (--max_train_samples), and the precision each give a key of their own; the paths do not."""
    from kd_bert.data.batching import encode
    from kd_bert.distillation.teacher_cache import cache_key
    from kd_bert.models.load import load_config, load_tokenizer

    config = load_config(str(trained_teacher), "--teacher_model")
    tokenizer = load_tokenizer(str(trained_teacher), "--teacher_model")
    texts = ["a fine film", "a dull one", "it is good"]
    encoding = encode(tokenizer, texts, 64)
    base = dict(teacher_source=str(trained_teacher), config=config, tokenizer=tokenizer, encoding=encoding,
                max_length=64, data_path="data", mixed_precision="no")

    retrained = nudged_copy(trained_teacher, tmp_path / "retrained")  # the same files, one weight changed
    other_texts = encode(tokenizer, ["a fine film", "a dull one", "it is bad"], 64)
    assert len(other_texts.input_ids) == len(encoding.input_ids)

    variants = {
        "teacher weights": dict(teacher_source=str(retrained)),
        "teacher tokenizer": dict(tokenizer=load_tokenizer(str(tiny_models["student_own_vocab"]), "--x")),
        "max_length": dict(max_length=32),
        "texts": dict(encoding=other_texts),
        "max_train_samples": dict(encoding=encode(tokenizer, texts[:2], 64)),
        "precision": dict(mixed_precision="bf16"),
    }
    key = cache_key(**base)[0]
    keys = {what: cache_key(**{**base, **change})[0] for what, change in variants.items()}
    assert all(k != key for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)
    copied = tmp_path / "copied"  # another path to the same teacher and data
    shutil.copytree(trained_teacher, copied)
    assert cache_key(**{**base, "teacher_source": str(copied), "data_path": "elsewhere"})[0] == key


def test_the_cache_key_separates_precisions(trained_teacher):
    from kd_bert.data.batching import encode
    from kd_bert.distillation.teacher_cache import cache_key
    from kd_bert.models.load import load_config, load_tokenizer

    tokenizer = load_tokenizer(str(trained_teacher), "--teacher_model")
    config = load_config(str(trained_teacher), "--teacher_model")
    encoding = encode(tokenizer, ["a fine film", "a dull one"], 64)
    keys = {mode: cache_key(str(trained_teacher), config, tokenizer, encoding, 64, "data", mode)[0]
            for mode in ("no", "bf16", "fp16")}
    assert len(set(keys.values())) == 3
    assert cache_key(str(trained_teacher), config, tokenizer, encoding, 64, "elsewhere", "no")[0] == keys["no"]


def test_an_onnx_teacher_exported_again_into_its_folder_gets_new_logits(sst2_slice, trained_teacher, tiny_models,
                                                                        tmp_path):
    pytest.importorskip("onnxruntime")
    from helpers import nudged_copy

    onnx_teacher = tmp_path / "teacher-onnx"
    retrained = nudged_copy(trained_teacher, tmp_path / "retrained")
    students = []
    for run, teacher in enumerate((trained_teacher, retrained)):
        exported = run_script("evaluate.py", "--model", teacher, "--data_path", sst2_slice, "--export_onnx",
                              onnx_teacher, "--max_eval_samples", "8", "--latency_samples", "0", "--max_length", "64",
                              "--mixed_precision", "no")
        assert exported.returncode == 0, exported
        result = run_script("distilled-bert.py", *distill_args(sst2_slice, onnx_teacher, tiny_models["student_base"],
                                                               tmp_path / f"out{run}"))
        assert result.returncode == 0, result
        assert "computed and cached" in result.stdout and "reused" not in result.stdout, result
        students.append((tmp_path / f"out{run}" / "student" / "model.safetensors").read_bytes())
    assert students[0] != students[1]


def test_the_digest_of_an_onnx_folder_covers_its_external_data(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import helper, numpy_helper

    from kd_bert.distillation.teacher_cache import weights_digest

    weight = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["logits"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 8])], [weight])
    (tmp_path / "config.json").write_text("{}")
    onnx.save_model(helper.make_model(graph), str(tmp_path / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.data", size_threshold=0)
    before = weights_digest(str(tmp_path), None)
    data = bytearray((tmp_path / "weights.data").read_bytes())
    data[0] ^= 1
    (tmp_path / "weights.data").write_bytes(bytes(data))
    after = weights_digest(str(tmp_path), None)
    assert after != before
    (tmp_path / "README.md").write_text("a model card")  # not a weight
    assert weights_digest(str(tmp_path), None) == after


# ---------------------------------------------------------------- one teacher pass shared by every run


def test_the_cache_folder_is_per_user_and_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "kd-bert"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "kd-bert"


DISTILL = ["--num_train_epochs", "1", "--batch_size", "16", "--max_train_samples", "96", "--max_length", "64"]


def distill_command(sst2_slice, teacher, student_base, out, *extra):
    return [sys.executable, str(REPO / "distilled-bert.py"), "--data_path", str(sst2_slice), "--teacher_model",
            str(teacher), "--student_model", str(student_base), "--output_dir", str(out), *DISTILL, *map(str, extra)]


def test_runs_into_other_folders_share_one_teacher_pass(sst2_slice, trained_teacher, tiny_models, tmp_path,
                                                         isolated_cache):
    """A sweep (here: two temperatures) into two output folders computes the teacher's logits once,
    in the per-user cache and nowhere in the output folders."""
    reused = []
    for name, temperature in (("sweep-a", "2"), ("sweep-b", "4")):
        result = run_script(*distill_command(sst2_slice, trained_teacher, tiny_models["student_base"],
                                             tmp_path / name, "--temperature", temperature)[1:])
        assert result.returncode == 0, result
        reused.append(json.loads((tmp_path / name / "student" / "metrics.json").read_text())["teacher_cache"]["reused"])
        assert not list((tmp_path / name).rglob("teacher_logits"))
    assert reused == [False, True]
    assert len(list((isolated_cache / "teacher_logits").glob("*.pt"))) == 1


@pytest.mark.slow  # two script processes at once, about 8 s; CI runs it with -m slow
def test_concurrent_runs_compute_the_teacher_pass_once(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """Two runs started together with the same key: one computes, the other waits on the lock and
    reuses; both finish with the same logits."""
    procs = [subprocess.Popen(distill_command(sst2_slice, trained_teacher, tiny_models["student_base"],
                                              tmp_path / f"run{i}"), cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    start = time.perf_counter()
    results = [Result(subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()),
                      time.perf_counter() - start) for p in procs]
    assert all(r.returncode == 0 for r in results), results
    caches = [json.loads((tmp_path / f"run{i}" / "student" / "metrics.json").read_text())["teacher_cache"]
              for i in range(2)]
    assert sorted(c["reused"] for c in caches) == [False, True]
    assert caches[0]["key"] == caches[1]["key"]
    losses = [json.loads((tmp_path / f"run{i}" / "student" / "metrics.json").read_text())["history"][0]["train_loss"]
              for i in range(2)]
    assert losses[0] == losses[1]


def test_a_run_waiting_for_another_runs_teacher_logits_says_for_whom_and_how_long(tmp_path, monkeypatch):
    import subprocess
    import sys

    from helpers import REPO

    from kd_bert.distillation import teacher_cache

    path = tmp_path / "teacher_logits" / "key.pt"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from kd_bert.distillation.teacher_cache import "
         "_key_lock\nwith _key_lock(Path(sys.argv[1]), True):\n    print('held', flush=True); time.sleep(2)",
         str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(teacher_cache, "WAIT_REPORT_S", 0.4)
        with logged() as said, teacher_cache._key_lock(path, True):
            details = json.loads(path.with_suffix(".lock").read_text())
    finally:
        holder.wait(timeout=30)
    assert said[0].startswith(f"waiting for another run that is computing these teacher logits (pid {holder.pid} on ")
    assert "-c" in said[0] and said[0].endswith(f"it holds {path.with_suffix('.lock')}")
    assert any(line.startswith("still waiting for the teacher logits of pid") and " s so far" in line
               for line in said[1:]), said
    assert details["pid"] != holder.pid  # once it holds the lock, the lock file names this run
    assert path.with_suffix(".lock").read_text() == ""  # and nothing once it is released


# ---------------------------------------------------------------- damaged and blocked entries


@pytest.mark.parametrize("damage", ["overwritten", "nan"])
def test_a_damaged_cache_entry_is_computed_again_with_a_warning(sst2_slice, trained_teacher, tiny_models, tmp_path,
                                                                damage):
    """A complete entry whose values were changed afterwards: overwritten with 25.0 (the checksum no longer
    matches), or with nan and the checksum made to match (only the finiteness check can tell)."""
    import torch

    from kd_bert.distillation.teacher_cache import checksum

    cache = tmp_path / "cache"
    args = lambda run: distill_args(sst2_slice, trained_teacher, tiny_models["student_base"],  # noqa: E731
                                    tmp_path / run, "--cache_dir", cache)
    first = run_script("distilled-bert.py", *args("first"))
    assert first.returncode == 0 and "computed and cached" in first.stdout, first
    [entry] = (cache / "teacher_logits").glob("*.pt")
    saved = torch.load(entry, weights_only=True)
    good = saved["logits"].clone()
    saved["logits"].fill_(25.0 if damage == "overwritten" else float("nan"))
    if damage == "nan":
        saved["sha256"] = checksum(saved["logits"])
    torch.save(saved, entry)

    second = run_script("distilled-bert.py", *args("second"))
    assert second.returncode == 0, second
    warning = "do not match their checksum" if damage == "overwritten" else "hold non-finite values"
    [line] = [line for line in second.stdout.splitlines() if line.startswith("warning: the cached teacher logits")]
    assert line.startswith(f"warning: the cached teacher logits {entry} {warning}") and \
        line.endswith("; computing them again"), second
    assert "computed and cached" in second.stdout and "reused" not in second.stdout
    assert torch.equal(torch.load(entry, weights_only=True)["logits"], good)  # the entry is whole again
    metrics = [json.loads((tmp_path / run / "student" / "metrics.json").read_text()) for run in ("first", "second")]
    assert metrics[0]["history"][0]["train_loss"] == metrics[1]["history"][0]["train_loss"]


def test_a_full_disk_while_the_cache_is_written_leaves_no_part_of_the_entry(sst2_slice, trained_teacher, tiny_models,
                                                                           tmp_path, monkeypatch):
    """The disk fills up while the logits are written, after their description: one line says nothing was
    written, and nothing was: no <key>.json without its logits, and no temporary."""
    from kd_bert import UserError

    write_bytes = Path.write_bytes

    def full_disk(self, data):
        if ".pt.tmp-" in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as error:
        run_in_process(sst2_slice, trained_teacher, tiny_models["student_base"], tmp_path / "out", cache)
    message = one_line(str(error.value))
    assert message.startswith(f"no space left on the device to write {cache / 'teacher_logits'}") and \
        message.endswith(".pt; nothing was written. Free some space, or write to another disk"), message
    # Only the key's lock, which no run holds any more.
    assert [p.suffix for p in (cache / "teacher_logits").iterdir()] == [".lock"]
    assert not (tmp_path / "out" / "student").exists()


@pytest.mark.parametrize("suffix", [".pt", ".json", ".lock"])
def test_a_folder_where_a_cache_file_belongs_is_one_line(sst2_slice, trained_teacher, tiny_models, tmp_path, suffix):
    cache = tmp_path / "cache"
    first = run_script("distilled-bert.py", *distill_args(sst2_slice, trained_teacher, tiny_models["student_base"],
                                                          tmp_path / "a", "--cache_dir", cache))
    assert first.returncode == 0, first
    [entry] = (cache / "teacher_logits").glob("*.pt")
    blocked = entry.with_suffix(suffix)
    blocked.unlink(missing_ok=True)
    blocked.mkdir()
    result = run_script("distilled-bert.py", *distill_args(sst2_slice, trained_teacher, tiny_models["student_base"],
                                                           tmp_path / "b", "--cache_dir", cache))
    assert_clean_failure(result, f"the teacher-logit cache has a folder at {blocked}", "--cache_dir",
                         output_dir=tmp_path / "b")


def test_an_augmented_run_reuses_the_training_sentences_logits_and_caches_its_copies_apart(
        sst2_slice, trained_teacher, tiny_models, tmp_path):
    """The cache is kept part by part: --augment adds a part (its seed's copies), and the training
    sentences' part is the one a run without copies wrote. The logits of each part are the teacher's,
    checked against plain transformers."""
    from helpers import load_plain, read_tsv

    cache = tmp_path / "cache"
    args = (sst2_slice, trained_teacher, tiny_models["student_base"])
    plain, _ = distill(*args, tmp_path / "plain", "--cache_dir", cache, "--mixed_precision", "no")
    augmented, _ = distill(*args, tmp_path / "aug", "--cache_dir", cache, "--augment", "1", "--mixed_precision", "no")
    parts = augmented["teacher_cache"]["parts"]
    assert [(p["part"], p["reused"]) for p in parts] == [("training sentences", True), ("perturbed copies", False)]
    assert parts[0]["key"] == plain["teacher_cache"]["key"] and augmented["teacher_cache"]["reused"] is False
    assert parts[1]["examples"] == augmented["augmented_examples"] == parts[0]["examples"]
    assert len(cache_files(cache)) == 2
    sentences = torch.load(parts[0]["path"], weights_only=True)["logits"]
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]]  # the whole train split, in order
    model, tokenizer = load_plain(trained_teacher)  # one sentence at a time, cut at the run's --max_length 64
    with torch.no_grad():
        want = torch.cat([model(**tokenizer(t, truncation=True, max_length=64, return_tensors="pt")).logits
                          for t in texts])
    assert torch.allclose(sentences, want, atol=1e-5)
