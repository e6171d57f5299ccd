"""Fixtures: a slice of the real SST-2 files, tiny BERT checkpoints built here, and the runs that several
test files read, made once per session. The helpers they use, and the tests too, are in helpers.py.

Nothing is downloaded: tokenizers are trained on the slice with `tokenizers`, models are BertConfig
with a few small layers, and every script runs as a subprocess the way a user runs it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from helpers import (
    DEV_ROWS,
    FAST_TRAINING,
    SST2,
    TEST_ROWS,
    TRAIN_ROWS,
    ScriptServer,
    distilled_student,
    read_tsv,
    resumable_teacher_args,
    run_script,
    tiny_bert,
    train_tokenizer,
    write_tsv,
)
from helpers import (
    tiny_mpnet as tiny_mpnet_model,
)

# The scripts share one teacher-logit cache per user by default. The suite never touches the user's:
# session fixtures share one of their own, and each test gets an empty one (the autouse fixture below).
os.environ["KD_BERT_CACHE"] = tempfile.mkdtemp(prefix="kd-bert-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    ScriptServer.stop()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """This test's own teacher-logit cache (the scripts' default), which its subprocesses inherit."""
    folder = tmp_path / "kd-bert-cache"
    monkeypatch.setenv("KD_BERT_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def sst2_slice(tmp_path_factory) -> Path:
    """GLUE-form SST-2 folder: the first rows of the real train/dev/test files, plus labels.txt."""
    folder = tmp_path_factory.mktemp("sst2")
    write_tsv(folder / "train.tsv", read_tsv(SST2 / "train.tsv")[: TRAIN_ROWS + 1])
    dev = read_tsv(SST2 / "dev.tsv")
    write_tsv(folder / "dev.tsv", dev[:1] + dev[1 : 1 + DEV_ROWS])
    write_tsv(folder / "test.tsv", read_tsv(SST2 / "test.tsv")[: TEST_ROWS + 1])
    (folder / "labels.txt").write_text((SST2 / "labels.txt").read_text())
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, sst2_slice) -> dict[str, Path]:
    """Base checkpoints: a teacher (2 layers, width 64), a student sharing its tokenizer (1 layer,
    width 32), and a student with its own, smaller vocabulary."""
    root = tmp_path_factory.mktemp("tiny")
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]]
    texts += [r[0] for r in read_tsv(sst2_slice / "dev.tsv")[1:]]
    shared = train_tokenizer(texts, 600, root / "vocab-600")
    own = train_tokenizer(texts, 300, root / "vocab-300")
    return {
        "teacher_base": tiny_bert(root / "teacher-base", shared, hidden=64, layers=2, seed=1),
        "student_base": tiny_bert(root / "student-base", shared, hidden=32, layers=1, seed=2),
        "student_own_vocab": tiny_bert(root / "student-own-vocab", own, hidden=32, layers=1, seed=3),
    }


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory, sst2_slice) -> Path:
    """A tiny MPNet base with its own vocabulary (helpers.tiny_mpnet)."""
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]] + [r[0] for r in read_tsv(sst2_slice / "dev.tsv")[1:]]
    return tiny_mpnet_model(tmp_path_factory.mktemp("tiny-mpnet") / "mpnet-base", texts)


@pytest.fixture(scope="session")
def trained_teacher(tmp_path_factory, sst2_slice, tiny_models) -> Path:
    """A teacher fine-tuned by trainer_teacher.py on the SST-2 slice."""
    out = tmp_path_factory.mktemp("teacher-run")
    result = run_script(
        "trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"],
        "--output_dir", out, *FAST_TRAINING,
    )
    assert result.returncode == 0, result
    return out / "teacher"


@pytest.fixture(scope="session")
def trained_student(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """A student distilled by distilled-bert.py from trained_teacher, with FAST_TRAINING."""
    return distilled_student(tmp_path_factory.mktemp("student-run"), sst2_slice, trained_teacher, tiny_models)


@pytest.fixture(scope="session")
def uninterrupted_teacher(tmp_path_factory, sst2_slice, tiny_models) -> Path:
    """The teacher of a RESUMABLE_RUN nothing stopped: what a stopped and resumed run must match."""
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_script("trainer_teacher.py", *resumable_teacher_args(sst2_slice, tiny_models, out))
    assert result.returncode == 0, result
    return out / "teacher"
