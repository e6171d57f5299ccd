"""Claims of the documentation checked by their effects: each test names the page and the claim it checks
and fails if it were false.

Most runs go through the Python API in this process (each script pays ~5 s of imports; the API writes
the same folders). Runs that several tests read are made once per module; a test that changes one
works on its own copy. The scripts run as subprocesses only where the command line is the claim, and
plain transformers gets a process of its own where the claim is what it does without this project.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import TEST_ROWS, TRAIN_ROWS, assert_clean_failure, logged, read_tsv, run_script, snapshot, tiny_bert
from safetensors.torch import load_file

from kd_bert import (
    DataConfig,
    DistillConfig,
    EvalConfig,
    TrainConfig,
    UserError,
    distill,
    evaluate,
    train_teacher,
)
from kd_bert.safety.checkpoints import resolve_resume

# 64 sentences in batches of 16: 4 batches an epoch. Tiny models train such an epoch in well under a second.
SMALL = dict(num_train_epochs=1, batch_size=16, learning_rate=1e-3, max_train_samples=64, report_to="none",
             mixed_precision="no")


def data_config(path, **overrides) -> DataConfig:
    return DataConfig(**{"data_path": str(path), "max_length": 32, **overrides})


def train_config(out, **overrides) -> TrainConfig:
    return TrainConfig(**{**SMALL, "output_dir": str(out), **overrides})


def tensors(folder: Path, file: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / file))


def history(metrics: dict) -> list:
    """An epoch history without its timings: what two runs of the same training must share."""
    return [(h["train_loss"], h["eval"]) for h in metrics["history"]]


def plain_logits(folder: Path, texts: list[str], max_length: int = 32, **load) -> torch.Tensor:
    """The model's logits computed by plain transformers, one sentence at a time (no padding)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder, **load).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return torch.cat([model(**tokenizer(t, truncation=True, max_length=max_length, return_tensors="pt")).logits
                          for t in texts])


def dev_rows(sst2_slice) -> list[list[str]]:
    return read_tsv(sst2_slice / "dev.tsv")[1:]


def drawn_rows(num_rows: int, labels: list[int], size: int, seed: int) -> list[int]:
    """The rows a --max_train_samples or --max_eval_samples sample of `size` holds, in file order."""
    from kd_bert.data.splits import Sample, draw_sample

    rows, _ = draw_sample(num_rows, labels, Sample("--max_eval_samples", size, seed), "validation")
    return rows


# ---------------------------------------------------------------- runs shared by the module


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, sst2_slice, tiny_models) -> Path:
    """A 4-layer teacher (width 32, the tiny models' tokenizer), fine-tuned for one short epoch: with
    4 layers the default --student_layers (half, spread evenly) is distinguishable from the first half."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("teacher4")
    base = tiny_bert(root / "base", AutoTokenizer.from_pretrained(tiny_models["teacher_base"]), hidden=32, layers=4,
                     seed=4)
    return train_teacher(str(base), data_config(sst2_slice), train_config(root / "run")).model_dir


@pytest.fixture(scope="module")
def epoch_run(tmp_path_factory, sst2_slice, tiny_models):
    """(output folder, model, data, train) of a 2-epoch teacher run with --checkpointing_steps epoch."""
    out = tmp_path_factory.mktemp("epoch-checkpoints")
    model, data = str(tiny_models["teacher_base"]), data_config(sst2_slice)
    train = train_config(out, num_train_epochs=2, checkpointing_steps="epoch")
    train_teacher(model, data, train)
    return out, model, data, train


@pytest.fixture(scope="module")
def student_run(tmp_path_factory, sst2_slice, teacher, tiny_models):
    """(output folder, configs) of a 2-epoch distillation checkpointed every 2 batches (step-2 ... step-8),
    with cached teacher logits in a cache of its own."""
    out = tmp_path_factory.mktemp("checkpointed-student")
    configs = (DistillConfig(teacher_model=str(teacher), student_model=str(tiny_models["student_base"]),
                             cache_dir=str(out / "cache")),
               data_config(sst2_slice), train_config(out, num_train_epochs=2, checkpointing_steps="2"))
    distill(*configs)
    return out, configs


# ---------------------------------------------------------------- the command line


def test_debug_shows_the_full_traceback_instead_of_the_one_line_error(tmp_path):
    """docs/never-lose-work.md (Errors): "Problems you can fix end with one line on stderr ... `--debug` shows
    the full traceback instead." (docs/flags.md: `--debug`: "show full tracebacks instead of one-line errors".)"""
    args = ["--learning_rate", "0", "--output_dir", tmp_path / "out"]
    plain = run_script("trainer_teacher.py", *args)
    assert_clean_failure(plain, "--learning_rate must be positive", output_dir=tmp_path / "out")
    debug = run_script("trainer_teacher.py", *args, "--debug")
    assert debug.returncode != 0 and "Traceback (most recent call last):" in debug.stderr, debug
    # The frames down to the check that raised it, and the error's class with the same message.
    assert 'kd_bert/config.py", line' in debug.stderr and "in __post_init__" in debug.stderr, debug
    last = debug.stderr.strip().splitlines()[-1]
    assert last.startswith("kd_bert.errors.UserError: --learning_rate must be positive"), debug
    assert not (tmp_path / "out").exists()


def test_a_bad_layer_map_is_a_one_line_error_before_training(sst2_slice, teacher, tiny_models, tmp_path):
    """docs/never-lose-work.md (Errors): a flag value that cannot work ends with one line, exit status 2 and
    nothing written; docs/flags.md: --layer_map gives a "1-based teacher layer for each student layer"."""
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--student_model", tiny_models["student_base"], "--hidden_weight", "1", "--layer_map", "5",
                        "--output_dir", out, "--max_length", "32", "--report_to", "none")
    # The teacher has 4 layers and the student 1: layer 5 does not exist.
    assert_clean_failure(result, "--layer_map 5", "1 to 4", "the student's 1 layers", output_dir=out)
    assert "epoch 1" not in result.stdout + result.stderr  # refused before the first batch
    assert not out.exists()


# ---------------------------------------------------------------- Never lose work


def test_checkpointing_steps_epoch_saves_a_checkpoint_after_every_epoch(epoch_run):
    """docs/never-lose-work.md: "With `--checkpointing_steps 500` (or `epoch`) a run saves its full state to
    `<output_dir>/checkpoints/<teacher|student>/step-N`"; docs/flags.md: "or 'epoch' after every epoch"."""
    out = epoch_run[0]
    folders = sorted((out / "checkpoints" / "teacher").iterdir(), key=lambda p: int(p.name.removeprefix("step-")))
    assert [p.name for p in folders] == ["step-4", "step-8"]  # 4 batches an epoch, 2 epochs
    for epoch, folder in enumerate(folders, start=1):
        progress = json.loads((folder / "progress.json").read_text())
        # Each one is taken at an epoch's end: the next epoch starts from its first batch.
        assert (progress["epoch"], progress["step"], len(progress["history"])) == (epoch + 1, 0, epoch)
        assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= \
            {p.name for p in folder.iterdir()}


def test_resuming_from_a_named_checkpoint_folder_ends_as_the_uninterrupted_run(epoch_run, tmp_path, capsys):
    """docs/never-lose-work.md: `--resume_from_checkpoint` continues from a checkpoint folder (docs/flags.md:
    "continue a run from a checkpoint folder, or 'latest'"), to the metrics and weights of an uninterrupted run."""
    source, model, data, train = epoch_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    first_epoch = out / "checkpoints" / "teacher" / "step-4"
    capsys.readouterr()
    resumed = train_teacher(model, data, replace(train, output_dir=str(out), resume_from_checkpoint=str(first_epoch)))
    # The folder named, not the newest (step-8, after which nothing would be left to train).
    assert f"resumed from {first_epoch}: epoch 2, 0 of its batches done" in capsys.readouterr().out
    uninterrupted = json.loads((source / "teacher" / "metrics.json").read_text())
    assert history(resumed.metrics) == history(uninterrupted)
    assert (out / "teacher" / "model.safetensors").read_bytes() == \
        (source / "teacher" / "model.safetensors").read_bytes()


def test_a_resumed_distillation_ends_as_the_uninterrupted_one(student_run, tmp_path, capsys):
    """docs/never-lose-work.md: a run stopped mid-epoch and resumed "ends with exactly the metrics and
    weights of an uninterrupted run on CPU", for distilled-bert.py as for the teacher."""
    source, (distill_cfg, data, train) = student_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    # What a run killed after its second batch leaves: the checkpoint of step 2, no student folder yet
    # (the first evaluation comes at the end of epoch 1).
    for folder in (out / "checkpoints" / "student").iterdir():
        if folder.name != "step-2":
            shutil.rmtree(folder)
    shutil.rmtree(out / "student")
    capsys.readouterr()
    resumed = distill(distill_cfg, data, replace(train, output_dir=str(out), resume_from_checkpoint="latest"))
    assert "step-2: epoch 1, 2 of its batches done" in capsys.readouterr().out
    uninterrupted = json.loads((source / "student" / "metrics.json").read_text())
    assert history(resumed.student.metrics) == history(uninterrupted)
    assert (out / "student" / "model.safetensors").read_bytes() == \
        (source / "student" / "model.safetensors").read_bytes()


def test_latest_skips_a_partial_checkpoint_folder(epoch_run, tmp_path):
    """docs/never-lose-work.md: "A checkpoint is written to a hidden `.step-N.partial` folder and renamed
    when complete, so `latest` never picks a half-written one." The partial folder here is even a whole
    checkpoint, of a later step: only its name keeps `latest` from it."""
    root = tmp_path / "checkpoints"
    shutil.copytree(epoch_run[0] / "checkpoints" / "teacher", root)
    shutil.copytree(root / "step-8", root / ".step-12.partial")
    with logged() as said:
        assert resolve_resume("latest", root) == root / "step-8"
    assert not said  # not skipped as damaged: never a candidate


def test_the_old_model_stays_until_the_new_runs_first_best_epoch(sst2_slice, tiny_models, teacher, tmp_path):
    """docs/never-lose-work.md (No silent overwrite): with --overwrite_output_dir "the old model stays until the
    new run's first best epoch replaces it": a run that fails before its first evaluation leaves it as it was."""
    out = tmp_path / "models"
    shutil.copytree(teacher, out / "teacher")
    before = snapshot(out / "teacher")
    # A learning rate of 1e30 blows the weights up at the first update: the loss of the second batch is
    # not finite, and the run stops there, before the end-of-epoch evaluation.
    with pytest.raises(UserError, match=r"the loss became .* at epoch 1, step 2"):
        train_teacher(str(tiny_models["teacher_base"]), data_config(sst2_slice),
                      train_config(out, learning_rate=1e30, overwrite_output_dir=True))
    assert snapshot(out / "teacher") == before


@pytest.mark.parametrize("existing, compare_no_kd", [("student", False), ("student_no_kd", True)])
def test_a_second_distillation_into_a_finished_student_is_refused(existing, compare_no_kd, student_run, sst2_slice,
                                                                  tiny_models, teacher, tmp_path):
    """docs/never-lose-work.md (No silent overwrite): "A run whose `<output_dir>/teacher` (or `student`) already
    holds a model stops at once unless given `--overwrite_output_dir`", and so does --compare_no_kd's
    student_no_kd."""
    out = tmp_path / "models"
    shutil.copytree(student_run[0] / "student", out / existing)
    before = snapshot(out)
    config = DistillConfig(teacher_model=str(teacher), student_model=str(tiny_models["student_base"]),
                           compare_no_kd=compare_no_kd)
    with pytest.raises(UserError, match=f"{out / existing} already holds a model; pass --overwrite_output_dir"):
        distill(config, data_config(sst2_slice), train_config(out))
    assert snapshot(out) == before


# ---------------------------------------------------------------- training flags


def word_vocabulary_bert(folder: Path, sst2_slice: Path) -> Path:
    """A tiny BERT (2 layers, width 64) whose vocabulary is the slice's training words in sorted order.
    A WordPiece vocabulary trained by `tokenizers` (the tiny_models fixture's) breaks frequency ties
    differently from one session to the next; this one is the same in every session, and so is a run
    trained from it, whose shape a test can then rely on."""
    from transformers import BertTokenizer

    words = {w for row in read_tsv(sst2_slice / "train.tsv")[1:] for w in re.findall(r"\w+|[^\w\s]", row[0].lower())}
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]) + "\n")
    return tiny_bert(folder, BertTokenizer(str(folder / "vocab.txt")), hidden=64, layers=2, seed=1)


def test_metric_for_best_model_loss_keeps_the_epoch_with_the_lowest_validation_loss(sst2_slice, tmp_path):
    """docs/flags.md: `--metric_for_best_model` is the "validation metric that picks the epoch saved"; with
    `loss`, lower is better."""
    base = word_vocabulary_bert(tmp_path / "base", sst2_slice)
    # A high learning rate over 4 epochs overfits: the validation loss is lowest early and grows while
    # the accuracy still rises, so keeping the lowest loss differs from keeping the best accuracy.
    result = train_teacher(str(base), data_config(sst2_slice),
                           train_config(tmp_path / "out", num_train_epochs=4, learning_rate=3e-3,
                                        max_train_samples=None, metric_for_best_model="loss"))
    losses = [h["eval"]["loss"] for h in result.history]
    accuracies = [h["eval"]["accuracy"] for h in result.history]
    lowest = losses.index(min(losses)) + 1
    # The run tells the metrics apart: its lowest loss is neither at its best accuracy nor its last epoch.
    assert accuracies[lowest - 1] < max(accuracies) and lowest < len(losses), result.history
    assert result.metrics["best_epoch"] == lowest and result.validation["loss"] == min(losses)
    # The saved weights are that epoch's: their loss on the dev sentences, by plain transformers.
    rows = dev_rows(sst2_slice)
    logits = plain_logits(result.model_dir, [r[0] for r in rows])
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([int(r[1]) for r in rows])).item()
    assert loss == pytest.approx(min(losses), abs=1e-5)


def test_gradient_accumulation_makes_the_updates_of_the_larger_batch(sst2_slice, tiny_models, tmp_path):
    """docs/flags.md: `--gradient_accumulation_steps`: "micro-batches per optimizer update"; docs/performance.md:
    "the effective batch is `batch_size * processes * gradient_accumulation_steps`". Batch 8 x 2 must train as
    batch 16 (dropout off and random batches, so the two see the same examples in the same order)."""
    base = tmp_path / "no-dropout"
    shutil.copytree(tiny_models["teacher_base"], base)
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (base / "config.json").write_text(json.dumps(config))

    def run(name, **flags):
        train = train_config(tmp_path / name, group_by_length=False, **flags)
        return tensors(train_teacher(str(base), data_config(sst2_slice), train).model_dir)

    accumulated = run("8x2", batch_size=8, gradient_accumulation_steps=2)
    large = run("16", batch_size=16)
    small = run("8", batch_size=8)
    for name, value in accumulated.items():
        torch.testing.assert_close(value, large[name], rtol=1e-4, atol=1e-5, msg=name)
    # Not so for batch 8 without accumulation: twice the updates move the weights elsewhere.
    assert max((accumulated[n] - small[n]).abs().max().item() for n in small) > 1e-3


def test_max_eval_samples_scores_the_same_drawn_validation_examples(sst2_slice, tiny_models, tmp_path):
    """docs/flags.md: `--max_eval_samples`: "N evaluation examples drawn at random with a fixed seed (42),
    stratified by label, the same ones in every script", in training as in evaluate.py."""
    n = 30
    data = data_config(sst2_slice, max_eval_samples=n)
    result = train_teacher(str(tiny_models["teacher_base"]), data, train_config(tmp_path))
    all_rows = dev_rows(sst2_slice)
    rows = [all_rows[i] for i in drawn_rows(len(all_rows), [int(r[1]) for r in all_rows], n, 42)]
    assert rows != all_rows[:n]  # not the head of the file
    gold = [int(r[1]) for r in rows]
    predicted = plain_logits(result.model_dir, [r[0] for r in rows]).argmax(-1).tolist()
    # The confusion matrix of exactly these rows (rows by gold label, columns by prediction).
    matrix = [[sum(g == i and p == j for g, p in zip(gold, predicted)) for j in (0, 1)] for i in (0, 1)]
    assert result.metrics["eval_examples"] == n and result.validation["confusion_matrix"] == matrix
    scored = evaluate(EvalConfig(model=str(result.model_dir), latency_samples=0), data)  # evaluate.py likewise
    assert scored.metrics["num_examples"] == n and scored.metrics["confusion_matrix"] == matrix


def test_validation_split_0_trains_on_every_row_and_keeps_the_last_epoch(sst2_slice, tiny_models, tmp_path):
    """docs/data.md: with no validation split, `--validation_split 0.1` holds out 10% of train; "`0` trains
    on all of it and saves the last epoch"."""
    data = tmp_path / "no-dev"
    data.mkdir()
    for name in ("train.tsv", "labels.txt"):
        shutil.copy(sst2_slice / name, data / name)
    out = tmp_path / "out"
    result = train_teacher(str(tiny_models["teacher_base"]), data_config(data, validation_split=0),
                           train_config(out, num_train_epochs=2, batch_size=32, max_train_samples=None,
                                        checkpointing_steps="epoch"))
    assert result.metrics["train_examples"] == TRAIN_ROWS and result.metrics["eval_examples"] == 0
    assert result.metrics["best_epoch"] == 2 and result.validation is None
    # The saved weights are the model as the second epoch left it, not as the first did.
    saved = tensors(result.model_dir)
    after = {step: tensors(out / "checkpoints" / "teacher" / step) for step in ("step-10", "step-20")}
    assert all(torch.equal(value, after["step-20"][name]) for name, value in saved.items())
    assert not all(torch.equal(value, after["step-10"][name]) for name, value in saved.items())


# ---------------------------------------------------------------- students


def test_default_student_layers_are_half_the_teachers_spread_evenly(sst2_slice, teacher, tmp_path):
    """docs/flags.md: `--student_layers` defaults to "half the teacher's layers", "a count spread evenly"
    (docs/methods.md: "12 -> 6 keeps 0,2,4,7,9,11"): for 4 layers, the first and the last."""
    tiny_step = 1e-12  # the student trains, but its weights stay the teacher's to float precision
    result = distill(DistillConfig(teacher_model=str(teacher), student_init="teacher_layers"),
                     data_config(sst2_slice), train_config(tmp_path, learning_rate=tiny_step))
    student, source = tensors(result.student.model_dir), tensors(teacher)
    assert json.loads((result.student.model_dir / "config.json").read_text())["num_hidden_layers"] == 2
    layer = "bert.encoder.layer.{}.attention.self.query.weight"
    for student_layer, teacher_layer in ((0, 0), (1, 3)):
        torch.testing.assert_close(student[layer.format(student_layer)], source[layer.format(teacher_layer)])
    assert not torch.allclose(student[layer.format(1)], source[layer.format(1)])  # not simply the first half


# Run in a fresh interpreter: importing kd_bert registers its model types with transformers' Auto
# classes, so only a process without it shows what plain transformers does with the folder.
PLAIN_TRANSFORMERS = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.argv[2])
try:
    AutoModelForSequenceClassification.from_pretrained(folder)
    refused = None
except Exception as exc:
    refused = type(exc).__name__
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    logits = [model(**tokenizer(t, truncation=True, max_length=32, return_tensors="pt")).logits[0].tolist()
              for t in texts]
print("RESULT", json.dumps({"refused": refused, "class": type(model).__name__, "kd_bert": "kd_bert" in sys.modules,
                  "logits": logits}))
"""


def test_a_mean_pool_student_is_saved_with_its_head_and_loads_with_plain_transformers(sst2_slice, teacher, tiny_models,
                                                                                        tmp_path):
    """docs/methods.md: `--head mean_pool` is "mean of the last hidden states over real tokens, then
    Dropout-Linear-GELU-Dropout-Linear; for the teacher ... or a pretrained student"; such a model "is saved
    with `custom_models.py` beside its weights", "plain transformers loads it with `trust_remote_code=True`",
    and "Without that flag transformers refuses the folder"."""
    from transformers import AutoTokenizer

    from kd_bert.models.load import load_classifier

    result = distill(DistillConfig(teacher_model=str(teacher), student_model=str(tiny_models["student_base"])),
                     data_config(sst2_slice), train_config(tmp_path, head="mean_pool"))
    folder = result.student.model_dir
    assert json.loads((folder / "config.json").read_text())["model_type"] == "kd-mean-pool"
    assert (folder / "custom_models.py").is_file()
    model = load_classifier(str(folder), "--model").eval()
    assert [type(m).__name__ for m in model.head] == ["Dropout", "Linear", "GELU", "Dropout", "Linear"]
    # Its logits are the head applied to the mean of the real tokens' last hidden states.
    texts = [r[0] for r in dev_rows(sst2_slice)[:16]]
    batch = AutoTokenizer.from_pretrained(folder)(texts, padding=True, truncation=True, max_length=32,
                                                  return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # some padding, which the mean must leave out
    with torch.no_grad():
        hidden = model.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        logits = model(**batch).logits
    torch.testing.assert_close(logits, model.head((hidden * mask).sum(1) / mask.sum(1)))

    plain = subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(folder), json.dumps(texts)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf-modules")})
    assert plain.returncode == 0, plain.stderr
    # Asked whether to run the folder's code (stdin closed: no), transformers refuses; the answer follows.
    loaded = json.loads(re.search(r"RESULT (\{.*\})", plain.stdout)[1])
    assert loaded["refused"] is not None  # not loaded silently as a stock BERT with an untrained head
    assert loaded["class"] == "MeanPoolForSequenceClassification" and not loaded["kd_bert"]
    torch.testing.assert_close(torch.tensor(loaded["logits"]), logits, rtol=1e-4, atol=1e-5)


def test_augment_with_compare_no_kd_trains_the_no_kd_student_on_the_original_sentences(sst2_slice, teacher,
                                                                                       tiny_models, tmp_path):
    """docs/methods.md: "With `--compare_no_kd`, the run without the teacher trains on the
    original sentences only, since it has no labels for the copies." It is then a plain --alpha 0 run."""
    student = str(tiny_models["student_base"])
    both = distill(DistillConfig(teacher_model=str(teacher), student_model=student, augment=1, compare_no_kd=True),
                   data_config(sst2_slice), train_config(tmp_path / "both"))
    assert both.student.metrics["train_examples"] == 128 and both.student.metrics["augmented_examples"] == 64
    assert both.no_kd.metrics["train_examples"] == 64 and both.no_kd.metrics["augmented_examples"] == 0
    alone = distill(DistillConfig(teacher_model=str(teacher), student_model=student, alpha=0.0),
                    data_config(sst2_slice), train_config(tmp_path / "alone"))
    # The same batches of the same sentences: the same weights, byte for byte.
    assert history(both.no_kd.metrics) == history(alone.student.metrics)
    assert (both.no_kd.model_dir / "model.safetensors").read_bytes() == \
        (alone.student.model_dir / "model.safetensors").read_bytes()


# ---------------------------------------------------------------- evaluation and the teacher-logit cache


@pytest.mark.precision
def test_unlabeled_split_predictions_go_beside_the_model_in_glue_form(sst2_slice, teacher, tmp_path):
    """docs/flags.md: `--predictions_file` defaults to "`<model>/predictions_<split>.tsv`" on an unlabeled split;
    docs/outputs.md: evaluate.py writes predictions "in the GLUE submission form (`index<TAB>prediction`)"."""
    model = tmp_path / "model"
    shutil.copytree(teacher, model)  # the file is written into the model's folder
    # In full precision, like plain_logits below.
    result = evaluate(EvalConfig(model=str(model), split="test", latency_samples=0, mixed_precision="no"),
                      data_config(sst2_slice))
    file = model / "predictions_test.tsv"
    assert Path(result.files["predictions"]) == file
    lines = file.read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == TEST_ROWS + 1
    rows = read_tsv(sst2_slice / "test.tsv")[1:]
    assert [line.split("\t")[0] for line in lines[1:]] == [r[0] for r in rows]
    predicted = plain_logits(model, [r[1] for r in rows]).argmax(-1).tolist()
    assert [int(line.split("\t")[1]) for line in lines[1:]] == predicted


def test_a_truncated_teacher_logit_cache_file_is_computed_again(student_run, tmp_path):
    """docs/performance.md (Speed): the cache holds "one `<key>.pt` and one `<key>.json` per teacher and part of the training set";
    files are written whole, and a file that cannot be read (here cut short) is computed again."""
    source, (distill_cfg, data, train) = student_run
    cache = tmp_path / "cache"
    shutil.copytree(source / "cache", cache)
    [file] = (cache / "teacher_logits").glob("*.pt")
    whole = file.read_bytes()
    file.write_bytes(whole[: len(whole) // 2])
    result = distill(replace(distill_cfg, cache_dir=str(cache)), data,
                     replace(train, output_dir=str(tmp_path / "out"), checkpointing_steps=None))
    assert result.student.metrics["teacher_cache"]["reused"] is False
    assert result.student.metrics["teacher_cache"]["path"] == str(file)
    # Whole again, with the logits it held before.
    assert torch.equal(torch.load(file, weights_only=True)["logits"],
                       torch.load(source / "cache" / "teacher_logits" / file.name, weights_only=True)["logits"])
    # And it trained on them: the same student as the run that computed them first.
    assert history(result.student.metrics) == history(json.loads((source / "student" / "metrics.json").read_text()))
