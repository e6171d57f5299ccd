"""`pip install .` gives the `kd-bert` command: the four scripts as subcommands, with their flags and --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, distill_args


pytestmark = pytest.mark.slow  # a virtual environment and an install, about 15 s; CI runs it with -m slow


@pytest.fixture(scope="module")
def kd_bert(tmp_path_factory) -> str:
    """The command, from the package installed into a fresh virtual environment (which sees this one's
    torch and transformers, so that nothing is downloaded)."""
    pytest.importorskip("poetry.core", reason="the package's build backend (requirements-dev.txt)")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", str(REPO)], check=True, capture_output=True, timeout=300)
    return str(venv / "bin" / "kd-bert")


def command(*args, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package, not the clone
    return subprocess.run(list(map(str, args)), cwd=cwd, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=300)


def test_the_command_lists_every_subcommand_and_shares_each_scripts_help(kd_bert, tmp_path):
    top = command(kd_bert, "--help", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    for name, script in (("teacher", "trainer_teacher.py"), ("distill", "distilled-bert.py"),
                         ("evaluate", "evaluate.py"), ("sweep", "sweep.py"), ("models", "")):
        assert f"    {name} " in top.stdout and script in top.stdout
        if script:
            ours = command(kd_bert, name, "--help", cwd=tmp_path)
            theirs = command(sys.executable, REPO / script, "--help", cwd=REPO)
            assert ours.returncode == 0 and theirs.returncode == 0
            # The same flags and text; only the program's name in the usage differs.
            assert ours.stdout.replace(f"kd-bert {name}", "PROG", 1).split() == \
                theirs.stdout.replace(script, "PROG", 1).split()
    wrong = command(kd_bert, "distill", "--alpha", "2", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.strip().startswith("error: ") and "alpha" in wrong.stderr


def test_a_distillation_and_its_evaluation_through_the_installed_command(kd_bert, sst2_slice, trained_teacher,
                                                                         tiny_models, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "run"
    result = command(kd_bert, "distill", *distill_args(sst2_slice, trained_teacher, tiny_models["student_base"], out),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert AutoModelForSequenceClassification.from_pretrained(out / "student").config.num_labels == 2
    scored = command(kd_bert, "evaluate", "--model", out / "student", "--data_path", sst2_slice, "--output",
                     tmp_path / "eval.json", "--latency_samples", "0", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] == \
        json.loads((out / "student" / "metrics.json").read_text())["validation"]["accuracy"]
