"""What the tests share besides fixtures (those are in conftest.py): the SST-2 slice and its sizes, tiny
tokenizers and BERT checkpoints built on the spot, the script runner and its forking server
(support/script_server.py), the check of a one-line error, and the builders, readers and references that
several test files use."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import logging
import math
import os
import random
import re
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
from support.script_server import forkable

from kd_bert import (
    DataConfig,
    TrainConfig,
    cli,
    train_teacher,
)
from kd_bert.data.labels import infer_label_names
from kd_bert.data.splits import load_data, to_text_split
from kd_bert.task import Task

REPO = Path(__file__).resolve().parent.parent

SST2 = REPO / "data" / "sst2"
TRAIN_ROWS, DEV_ROWS, TEST_ROWS = 320, 120, 40
# What `--mixed_precision auto` picks on a CPU with native bf16, on any machine (emulated where bf16 is not native).
BF16_BY_AUTO = {"KD_BERT_AUTO_PRECISION": "bf16"}

FAST_TRAINING = ["--num_train_epochs", "2", "--batch_size", "16", "--learning_rate", "1e-3", "--max_length", "64"]

# 320 sentences in batches of 8: 40 batches an epoch, 3 epochs, so a kill or a signal lands mid-run.
RESUMABLE_RUN = ["--num_train_epochs", "3", "--batch_size", "8", "--learning_rate", "1e-3", "--max_length", "64",
                 "--checkpointing_steps", "7", "--save_total_limit", "2"]


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder with its bytes (None for a folder): equal before and after means untouched."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def snapshot(folder: Path) -> dict:
    """Every file under folder, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files or folders (.NAME.partial-PID, .NAME.tmp-PID, .NAME.old-PID) left under folder."""
    return [str(p) for p in folder.rglob(".*") if any(tag in p.name for tag in (".partial", ".tmp-", ".old-"))]


def read_tsv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


def block(page: Path, name: str) -> str:
    """What stands between the lines `<!-- name -->` and `<!-- /name -->` of a page: a generated block."""
    text = page.read_text(encoding="utf-8")
    return text[text.index(f"<!-- {name} -->\n") + len(f"<!-- {name} -->\n"):text.index(f"<!-- /{name} -->")]


def section(page: Path, heading: str) -> str:
    """The page from heading to the next `## ` heading, its line breaks and runs of spaces made single spaces,
    so a claim may wrap."""
    text = page.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return " ".join(text[start:end if end > 0 else None].split())


NAMES = ["negative", "positive"]


def save_hub_shaped(folder, sst2_slice):
    """A DatasetDict shaped like the hub's SST-2: idx, sentence, ClassLabel label; test labels -1."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"idx": Value("int32"), "sentence": Value("string"), "label": ClassLabel(names=NAMES)})

    def split(name, labeled):
        rows = read_tsv(sst2_slice / name)[1:]
        if labeled:
            return {"idx": list(range(len(rows))), "sentence": [r[0] for r in rows], "label": [int(r[1]) for r in rows]}
        return {"idx": [int(r[0]) for r in rows], "sentence": [r[1] for r in rows], "label": [-1] * len(rows)}

    DatasetDict({
        "train": Dataset.from_dict(split("train.tsv", True), features=features),
        "validation": Dataset.from_dict(split("dev.tsv", True), features=features),
        "test": Dataset.from_dict(split("test.tsv", False), features=features),
    }).save_to_disk(str(folder))
    return folder


INTENTS = ["card_lost", "balance", "refund", "transfer"]
KEYWORDS = {"card_lost": "card", "balance": "balance", "refund": "refund", "transfer": "transfer"}


def write_intents(folder, sst2_slice, train_per_class=40, dev_per_class=10, with_dev=True):
    """A small intent set: each sentence is SST-2 filler words around its intent's keyword."""
    rng = random.Random(0)
    words = " ".join(r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:80]).split()
    folder.mkdir(parents=True, exist_ok=True)

    def rows(per_class):
        out = []
        for intent in INTENTS:
            for _ in range(per_class):
                filler = rng.sample(words, 6)
                filler.insert(rng.randrange(7), KEYWORDS[intent])
                out.append({"text": " ".join(filler), "intent": intent})
        rng.shuffle(out)
        return out

    splits = {"train": rows(train_per_class)}
    if with_dev:
        splits["dev"] = rows(dev_per_class)
    for name, split in splits.items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "intent"])
            writer.writeheader()
            writer.writerows(split)
    return folder


def intents_csv(path, classes: int, per_class: int) -> list[str]:
    """A CSV of `classes` intents with long names, sorted by class, as public intent sets come."""
    words = "card cash transfer money account balance pin lost stolen refund fee top up atm the my a".split()
    names = [f"intent_{c:02d}_{'_'.join(words[(c + i) % len(words)] for i in range(4))}" for c in range(classes)]
    lines = ["text,intent"]
    for c, name in enumerate(names):
        lines += [f"{' '.join(words[(c * 7 + i * j) % len(words)] for j in range(6))} {i},{name}"
                  for i in range(per_class)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return names


LONGEST_LINE = 300


def one_line(message: str) -> str:
    assert "\n" not in message and len(message) <= LONGEST_LINE, (len(message), message)
    return message


def long_lines(result) -> list[str]:
    return [line for line in re.split(r"[\r\n]", result.stdout + result.stderr) if len(line) > LONGEST_LINE]


def read_split(path, policy="error", split="train", names=None, **flags):
    """The split as a training job reads it, and what was said on the way."""
    raw, columns = load_data(DataConfig(data_path=str(path), on_bad_rows=policy, validation_split=0, **flags))
    names = names or infer_label_names(raw, columns, flags.get("label_names"))
    with logged() as said:
        split = to_text_split(raw, split, columns, Task.of(names), need_labels=False, required_by="",
                              labels_from="the training split")
    return split, names, raw, said


def read_train(path, policy="error", **flags):
    """The train split as a training job reads it, its label names, the raw data and what was said."""
    raw, columns = load_data(DataConfig(data_path=str(path), on_bad_rows=policy, validation_split=0, **flags))
    names = infer_label_names(raw, columns, None)
    with logged() as said:
        split = to_text_split(raw, "train", columns, Task.of(names), need_labels=True, required_by="")
    return split, names, raw, said


class Result:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds

    def __repr__(self) -> str:
        return f"<exit {self.returncode}>\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def run_script(script: str, *args, env: dict | None = None, cwd: Path = REPO, timeout: int = 600) -> Result:
    """Run one of the entry scripts as a user would: `python <script> <args>` from the repo root, in a
    process of its own. The process is forked from the script server (support/script_server.py), which has
    done the imports once in this session's environment; `env`'s variables are set in the forked process,
    and the few that imports read (HF_HUB_OFFLINE, OMP_NUM_THREADS, ...) read again there. An `env` that
    changes another variable imports read (HF_HOME, PYTHONPATH, ...) gets a fresh interpreter, and so does
    every run under KD_TEST_FRESH_PROCESSES=1."""
    session_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    full_env = {**session_env, **(env or {})}
    command = [str(REPO / script), *map(str, args)]
    start = time.perf_counter()
    server = None if full_env.get("KD_TEST_FRESH_PROCESSES") == "1" else ScriptServer.get(session_env)
    if server is not None and forkable(server.env, full_env):
        proc = server.run(command, full_env, cwd, timeout)
    else:
        proc = subprocess.run([sys.executable, *command], cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout)
    return Result(proc, time.perf_counter() - start)


class ScriptServer:
    """The session's script server (see support/script_server.py): one request at a time."""

    _instance: "ScriptServer | None" = None
    _failed = False

    def __init__(self, env: dict):
        self.env = env
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "support" / "script_server.py")], cwd=REPO,
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
        """A server that can fork runs in the session's environment `env`: the running one, or a new one in
        its place where the session changed an import-time variable the forked process cannot read again
        (HF_HOME, say); None where forking is not possible."""
        if cls._failed or not hasattr(os, "fork"):
            return None
        current = cls._instance
        if current is None or current.proc.poll() is not None or not forkable(current.env, env):
            cls.stop()
            try:
                cls._instance = cls(env)
            except (OSError, RuntimeError, ValueError):
                cls._failed = True
                return None
        return cls._instance

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


def parser_of(script):
    """The script's own parser, as the script builds it."""
    return load_script(script).parse_args()


def load_script(name: str):
    """The script as a module, loaded from its file (the scripts only run under __main__)."""
    spec = importlib.util.spec_from_file_location(name.replace("-", "_").removesuffix(".py"), REPO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def teacher_in_process(argv, capsys, monkeypatch) -> tuple[int, str]:
    """trainer_teacher.py's exit status and stderr for an argv it refuses before any model is loaded,
    run in this process: as the script runs it, without starting another Python."""
    import trainer_teacher

    for name in ("TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS"):  # cli.run sets them for its process
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    with pytest.raises(SystemExit) as stop:
        cli.run(trainer_teacher.main, trainer_teacher.parse_args(), list(map(str, argv)))
    return stop.value.code, capsys.readouterr().err


def train_tokenizer(texts: list[str], vocab_size: int, folder: Path):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizer

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(folder))
    return BertTokenizer.from_pretrained(str(folder))


def tiny_bert(folder: Path, tokenizer, hidden: int, layers: int, seed: int) -> Path:
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


def distilled_student(out: Path, sst2_slice: Path, teacher: Path, tiny_models: dict, *flags) -> Path:
    """distilled-bert.py's student of the tiny student base from `teacher`, with FAST_TRAINING and `flags`."""
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher, "--student_model",
                        tiny_models["student_base"], "--output_dir", out, *FAST_TRAINING, *flags)
    assert result.returncode == 0, result
    return out / "student"


def resumable_teacher_args(sst2_slice, tiny_models, out) -> list:
    return ["--data_path", sst2_slice, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            *RESUMABLE_RUN]


def quick_teacher_args(data, tiny_models, out) -> list:
    return ["--data_path", data, "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", out,
            *FAST_TRAINING, "--num_train_epochs", "1"]


def teacher_job(tiny_models, sst2_slice, **train):
    return lambda: train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sst2_slice)),
                                 TrainConfig(**train))


def quick_teacher(sst2_slice, tiny_models, out, **changes):
    """A one-epoch teacher on 32 sentences through the API, over whatever out/teacher holds."""
    from kd_bert import DataConfig, TrainConfig, train_teacher

    settings = dict(output_dir=out, num_train_epochs=1, batch_size=16, max_train_samples=32, learning_rate=1e-3,
                    overwrite_output_dir=True, report_to="none", mixed_precision="no", **changes)
    return train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=sst2_slice, max_length=64),
                         TrainConfig(**settings))


def distill_args(sst2_slice, teacher, student, out, *extra):
    return ["--data_path", sst2_slice, "--teacher_model", teacher, "--student_model", student, "--output_dir", out,
            "--num_train_epochs", "1", "--batch_size", "16", "--max_train_samples", "48", "--max_length", "64",
            "--report_to", "none", "--mixed_precision", "no", *extra]


QUICK = [*FAST_TRAINING[:1], "1", *FAST_TRAINING[2:], "--max_train_samples", "96"]  # one epoch, 96 sentences


def evaluate_model(model, sst2_slice, tmp_path, *flags):
    out = tmp_path / f"eval-{model.name}.json"
    result = run_script("evaluate.py", "--model", model, "--data_path", sst2_slice, "--output", out,
                        "--latency_samples", "0", *flags)
    assert result.returncode == 0, result
    return json.loads(out.read_text())


def dev_texts(sst2_slice):
    return [r[0] for r in read_tsv(sst2_slice / "dev.tsv")[1:]]


QUIET = dict(report_to=["none"], batch_size=8)


def load_plain(path):
    """The model and tokenizer through plain transformers, with no project code."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(str(path)).eval(), AutoTokenizer.from_pretrained(str(path))


def independent_logits(path, texts, mixed_precision: str = "no"):
    """(num_texts, num_labels) logits computed one example at a time, no padding, no batching; under bf16
    autocast for a run that recorded mixed_precision bf16."""
    import torch

    model, tokenizer = load_plain(path)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_precision == "bf16"):
        return torch.cat([model(**tokenizer(t, truncation=True, max_length=128, return_tensors="pt")).logits.float()
                          for t in texts])


def independent_predictions(path, texts, mixed_precision: str = "no"):
    return independent_logits(path, texts, mixed_precision).argmax(-1).tolist()


# evaluate.py in full precision, as the fp32 references above are: where auto picks bf16, logits differ in the
# third digit and a near tie can flip a prediction.
FP32 = ["--mixed_precision", "no"]


def assert_hf_model_folder(path, role):
    from transformers import pipeline

    model, tokenizer = load_plain(path)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    classify = pipeline("text-classification", model=str(path))
    out = classify(["a gorgeous , witty film", "a dull , lifeless mess"])
    assert [o["label"] in NAMES for o in out] == [True, True]
    args = json.loads((path / "training_args.json").read_text())
    assert args["role"] == role and "transformers" in args["versions"] and "seed" in args["args"]
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["validation"]["num_examples"] == DEV_ROWS
    assert len(metrics["history"]) == 2
    best = max(h["eval"]["accuracy"] for h in metrics["history"])
    assert metrics["validation"]["accuracy"] == best  # the epoch saved is the best one
    assert metrics["history"][metrics["best_epoch"] - 1]["eval"]["accuracy"] == best
    assert not list(path.parent.glob(f".{path.name}.*")), "temporary save folders left behind"
    return metrics


def weights(folder):
    return (folder / "model.safetensors").read_bytes()


def outcome(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    history = [(h["train_loss"], h["eval"]["loss"], h["eval"]["accuracy"]) for h in metrics["history"]]
    return metrics["validation"], history


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


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


def load_hypothesis_profile() -> None:
    """The same examples on every run, so that a submission's CI cannot pass or fail by the draw;
    HYPOTHESIS_PROFILE=explore draws new ones each run, to look for failures."""
    from hypothesis import settings

    settings.register_profile("repeatable", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def tiny_mpnet(folder: Path, texts: list[str], seed: int = 4) -> Path:
    """A "pretrained" MPNet base (2 layers, width 32) with a WordPiece vocabulary of its own, trained on
    texts, whose special tokens are MPNet's (<s>, </s>, <pad>, <mask>): all-mpnet-base-v2 in small."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "[UNK]"]
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=500, min_frequency=1, special_tokens=specials, show_progress=False)
    tokenizer = MPNetTokenizerFast(vocab=wordpiece.get_vocab(), unk_token="[UNK]")
    torch.manual_seed(seed)
    config = MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id)
    MPNetModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PACKAGE = REPO / "kd_bert"


def package_modules() -> dict[str, ast.Module]:
    """Every module of the package by dotted name under it: "config", "data.read", "data" (its __init__)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"
        modules[name] = ast.parse(path.read_text(encoding="utf-8"))
    return modules


def package_imports(name: str, tree: ast.Module, modules) -> set[str]:
    """The package's modules that module `name` imports (None for a script outside the package), at any depth
    of its code (imports inside functions count too): relative (`from ..data import read`) and absolute
    (`import kd_bert.data.read`, `from kd_bert import cli`)."""
    if name is None:
        package = None
    elif name == "__init__":
        package = []
    else:
        package = name.split(".")[:-1] if (PACKAGE / (name.replace(".", "/") + ".py")).is_file() else name.split(".")
    found = set()

    def add(target: list[str], names=()):
        for alias in names:
            candidate = ".".join([*target, alias])
            if candidate in modules:
                found.add(candidate)
                continue
            found.add(".".join(target) or "__init__")
        if not names:
            found.add(".".join(target) or "__init__")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "kd_bert":
                    add(parts[1:])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "kd_bert":
                    continue
                target = parts[1:]
            else:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            add(target, [alias.name for alias in node.names])
    return {m for m in found if m in modules and m != name}
