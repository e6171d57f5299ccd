"""scripts/recipe.sh runs the whole job (here on tiny models and the SST-2 slice) and its results
table reports what the models really do."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from helpers import REPO, TEST_ROWS, independent_predictions, load_plain, read_tsv


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, sst2_slice, tiny_models):
    out = tmp_path_factory.mktemp("recipe") / "run"
    env = {**os.environ, "TEACHER_BASE": str(tiny_models["teacher_base"]), "RECIPE_DATA": str(sst2_slice),
           "TEACHER_EPOCHS": "2", "TEACHER_LR": "1e-3", "STUDENT_LAYERS": "1", "STUDENT_LR": "1e-3",
           "EVAL_STEPS": "7", "TOKENIZERS_PARALLELISM": "false",
           # auto picks full precision, whatever the machine: the models are checked against fp32 predictions.
           "KD_BERT_AUTO_PRECISION": "no"}
    proc = subprocess.run(["bash", "scripts/recipe.sh", "sst2-small", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_recipe_writes_loadable_models_and_glue_predictions(recipe, sst2_slice):
    out, _ = recipe
    for role in ("teacher", "student", "student_no_kd"):
        model, _ = load_plain(out / role)
        assert model.config.id2label == {0: "negative", 1: "positive"}
    assert load_plain(out / "student")[0].config.num_hidden_layers == 1
    lines = (out / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == TEST_ROWS + 1
    texts = [r[1] for r in read_tsv(sst2_slice / "test.tsv")[1:]]
    assert [int(line.split("\t")[1]) for line in lines[1:]] == independent_predictions(out / "student", texts)


def test_recipe_table_reports_the_models_real_accuracy(recipe, sst2_slice):
    out, stdout = recipe
    dev = read_tsv(sst2_slice / "dev.tsv")[1:]
    labels = [int(r[1]) for r in dev]

    def accuracy(folder):
        predictions = independent_predictions(folder, [r[0] for r in dev])
        return 100 * sum(p == y for p, y in zip(predictions, labels)) / len(labels)

    table = (out / "recipe_results.md").read_text()
    assert table in stdout  # printed and saved
    rows = {row.split("|")[1].strip(): row.split("|")[3].strip() for row in table.splitlines()
            if row.startswith("| ") and not row.startswith("| model")}
    assert float(rows["teacher (2 layers), fine-tuned"]) == pytest.approx(accuracy(out / "teacher"), abs=0.006)
    assert float(rows["student (1 layer), distilled"]) == pytest.approx(accuracy(out / "student"), abs=0.006)
    assert float(rows["student (1 layer) without the teacher (baseline)"]) == pytest.approx(accuracy(out / "student_no_kd"),
                                                                                  abs=0.006)
    difference = float(re.search(r"distillation minus baseline: ([+-][\d.]+) points", table).group(1))
    assert difference == pytest.approx(accuracy(out / "student") - accuracy(out / "student_no_kd"), abs=0.011)
    augmented = json.loads((out / "student" / "metrics.json").read_text())["augmented_examples"]
    assert augmented == 320  # --augment 1: one teacher-labeled copy of each training sentence
