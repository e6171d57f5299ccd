"""Fixtures: a slice of the real SST-2 files, tiny BERT checkpoints built here, and a script runner.

Nothing is downloaded: tokenizers are trained on the slice with `tokenizers`, models are BertConfig
with a few small layers, and every script runs as a subprocess the way a user runs it.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The scripts share one teacher-logit cache per user by default. The suite never touches the user's:
# session fixtures share one of their own, and each test gets an empty one (the autouse fixture below).
os.environ["KD_BERT_CACHE"] = tempfile.mkdtemp(prefix="kd-bert-test-cache-")
SST2 = REPO / "data" / "sst2"
TRAIN_ROWS, DEV_ROWS, TEST_ROWS = 320, 120, 40
# What `--mixed_precision auto` picks on a CPU with native bf16, on any machine (emulated where bf16 is not native).
BF16_BY_AUTO = {"KD_BERT_AUTO_PRECISION": "bf16"}


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
    """Run one of the entry scripts as a user would: `python <script> <args>` from the repo root, in a
    process of its own. The process is forked from the script server (script_server.py), which has
    done the imports once, in an environment that agrees with this one in everything imports read;
    KD_TEST_FRESH_PROCESSES=1 gives every run a fresh interpreter instead."""
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    command = [str(REPO / script), *map(str, args)]
    start = time.perf_counter()
    server = ScriptServer.get(full_env)
    if server is not None:
        proc = server.run(command, full_env, cwd, timeout)
    else:
        proc = subprocess.run([sys.executable, *command], cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout)
    return Result(proc, time.perf_counter() - start)


def assert_clean_failure(result, *phrases, output_dir=None):
    """Exit status 2 and one line `error: ...` holding every phrase, with no traceback; with output_dir,
    no output left there."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    # Only a training progress bar may come before the one error line.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("epoch ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for phrase in phrases:
        assert phrase in lines[0], result
    if output_dir is not None:
        assert not output_dir.exists() or not any(output_dir.iterdir()), "a failed run left output behind"


def nudged_copy(model: Path, target: Path) -> Path:
    """A copy of a model folder with one weight changed by 1e-3: the same files, other weights."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model, target)
    weights = load_file(str(target / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] += 1e-3
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


class ScriptServer:
    """The session's script server (see script_server.py): one request at a time."""

    # Environment variables read when torch, transformers, accelerate or the hub client are imported.
    IMPORT_TIME = ("HF_", "HUGGINGFACE", "TRANSFORMERS_", "TOKENIZERS_", "ACCELERATE_", "TORCH", "PYTORCH", "OMP_",
                   "MKL_", "KMP_", "CUDA", "PYTHON", "DATASETS_", "HOME", "XDG_")
    _instance: "ScriptServer | None" = None
    _failed = False

    def __init__(self, env: dict):
        self.env = env
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "script_server.py")], cwd=REPO,
                                     env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.pending = b""
        if "ready" not in (self._reply(120) or {}):
            raise RuntimeError("the script server did not start")

    def _reply(self, timeout: float) -> dict | None:
        """The server's next JSON line, or None if none comes within timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else None
            if not chunk:
                if ready:  # end of file: the server is gone
                    raise RuntimeError("the script server stopped")
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    @classmethod
    def get(cls, env: dict) -> "ScriptServer | None":
        """A server whose imports saw `env`: the running one, or a new one in its place (a test that changed
        what imports read, HF_HUB_OFFLINE say, costs one restart); None where forking is not possible."""
        if env.get("KD_TEST_FRESH_PROCESSES") == "1" or cls._failed or not hasattr(os, "fork"):
            return None
        current = cls._instance
        if current is None or current.proc.poll() is not None or not current.can_run(env):
            cls.stop()
            try:
                cls._instance = cls(env)
            except (OSError, RuntimeError, ValueError):
                cls._failed = True
                return None
        return cls._instance

    def can_run(self, env: dict) -> bool:
        keys = {k for k in {*env, *self.env} if k.startswith(self.IMPORT_TIME)}
        return all(env.get(k) == self.env.get(k) for k in keys)

    def run(self, command: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="kd-script-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"script": command[0], "args": command[1:], "env": env, "cwd": str(cwd), "stdout": str(out),
                       "stderr": str(err)}
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            pid = self._reply(60)["pid"]
            reply = self._reply(timeout)
            if reply is None:  # too long: end it as subprocess.run's timeout would
                os.kill(pid, signal.SIGKILL)
                self._reply(60)
                raise subprocess.TimeoutExpired([sys.executable, *command], timeout)
            status = reply["status"]
            return subprocess.CompletedProcess([sys.executable, *command], status,
                                               out.read_text(errors="replace"), err.read_text(errors="replace"))

    @classmethod
    def stop(cls) -> None:
        if cls._instance is not None and cls._instance.proc.poll() is None:
            cls._instance.proc.stdin.close()
            cls._instance.proc.wait(timeout=30)
        cls._instance = None


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


def distilled_student(out: Path, sst2_slice: Path, teacher: Path, tiny_models: dict, *flags) -> Path:
    """distilled-bert.py's student of the tiny student base from `teacher`, with FAST_TRAINING and `flags`."""
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher, "--student_model",
                        tiny_models["student_base"], "--output_dir", out, *FAST_TRAINING, *flags)
    assert result.returncode == 0, result
    return out / "student"


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


@contextmanager
def logged():
    """The lines the package logs while the block runs, as the scripts print them."""
    from kd_bert.log import LOGGER, _Lines

    lines, formatter, handler = [], _Lines(), logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(formatter.format(record))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
