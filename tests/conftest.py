"""Fixtures: a slice of the real SST-2 files, tiny BERT checkpoints built here, and a script runner.

Nothing is downloaded: tokenizers are trained on the slice with `tokenizers`, models are BertConfig
with a few small layers, and every script runs as a subprocess the way a user runs it.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The scripts share one teacher-logit cache per user by default. The suite never touches the user's:
# session fixtures share one of their own, and each test gets an empty one (the autouse fixture below).
os.environ["KD_BERT_CACHE"] = tempfile.mkdtemp(prefix="kd-bert-test-cache-")
SST2 = REPO / "data" / "sst2"
TRAIN_ROWS, DEV_ROWS, TEST_ROWS = 320, 120, 40


def read_tsv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


class Result:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds

    def __repr__(self) -> str:
        return f"<exit {self.returncode}>\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def run_script(script: str, *args, env: dict | None = None, cwd: Path = REPO, timeout: int = 600) -> Result:
    """Run one of the entry scripts as a user would: `python <script> <args>` from the repo root."""
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / script), *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    return Result(proc, time.perf_counter() - start)


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


def _train_tokenizer(texts: list[str], vocab_size: int, folder: Path):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizer

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(folder))
    return BertTokenizer.from_pretrained(str(folder))


def _tiny_bert(folder: Path, tokenizer, hidden: int, layers: int, seed: int) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(folder)  # a "pretrained" base with no classifier head
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, sst2_slice) -> dict[str, Path]:
    """Base checkpoints: a teacher (2 layers, width 64), a student sharing its tokenizer (1 layer,
    width 32), and a student with its own, smaller vocabulary."""
    root = tmp_path_factory.mktemp("tiny")
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]]
    texts += [r[0] for r in read_tsv(sst2_slice / "dev.tsv")[1:]]
    shared = _train_tokenizer(texts, 600, root / "vocab-600")
    own = _train_tokenizer(texts, 300, root / "vocab-300")
    return {
        "teacher_base": _tiny_bert(root / "teacher-base", shared, hidden=64, layers=2, seed=1),
        "student_base": _tiny_bert(root / "student-base", shared, hidden=32, layers=1, seed=2),
        "student_own_vocab": _tiny_bert(root / "student-own-vocab", own, hidden=32, layers=1, seed=3),
    }


FAST_TRAINING = ["--num_train_epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3", "--max_length", "64"]


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


# 320 sentences in batches of 8: 40 batches an epoch, 3 epochs, so a kill or a signal lands mid-run.
RESUMABLE_RUN = ["--num_train_epochs", "3", "--batch_size", "8", "--learning_rate", "1e-3", "--max_length", "64",
                 "--checkpointing_steps", "7", "--save_total_limit", "2"]


def resumable_teacher_args(sst2_slice, tiny_models, out) -> list:
    return ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            *RESUMABLE_RUN]


@pytest.fixture(scope="session")
def uninterrupted_teacher(tmp_path_factory, sst2_slice, tiny_models) -> Path:
    """The teacher of a RESUMABLE_RUN nothing stopped: what a stopped and resumed run must match."""
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_script("trainer_teacher.py", *resumable_teacher_args(sst2_slice, tiny_models, out))
    assert result.returncode == 0, result
    return out / "teacher"
