"""--max_train_samples and --max_eval_samples draw seeded, stratified samples: the same rows for the
same seed and data in every script, every class of a class-sorted file, and a teacher-logit cache
entry and a resumption that follow the rows drawn."""

import json
import re
from collections import Counter

import pytest
from helpers import assert_clean_failure, read_tsv, run_script, write_tsv

import kd_bert.jobs.job
from kd_bert import (
    DataConfig,
    DistillConfig,
    TrainConfig,
    UserError,
    distill,
    train_teacher,
)
from kd_bert.data.splits import Sample, draw_sample
from kd_bert.safety.checkpoints import check_same_run, run_args

LONGEST_LINE = 300  # characters: a message is one readable line


def sample(size: int, seed: int) -> Sample:
    return Sample("--max_train_samples", size, seed)


def test_a_stratified_sample_of_a_class_sorted_split_covers_every_class_in_proportion():
    sizes = [200] * 40 + [50] * 30 + [3] * 7  # 77 classes, sorted: the first rows hold one class only
    classes = [c for c, n in enumerate(sizes) for _ in range(n)]
    rows, note = draw_sample(len(classes), classes, sample(2000, 42), "training")
    assert len(rows) == len(set(rows)) == 2000 and rows == sorted(rows)  # distinct rows, in file order
    drawn = Counter(classes[r] for r in rows)
    assert set(drawn) == set(range(77))
    # Each class in proportion: one row each first, the other 1923 shared by what each has left.
    for c, n in enumerate(sizes):
        share = 1 + 1923 * (n - 1) / (len(classes) - 77)
        assert abs(drawn[c] - share) < 1, (c, drawn[c], share)
    assert note == "--max_train_samples 2000: drew 2000 of 9521 training examples (seed 42, stratified by label: " \
                   "77 classes)"
    assert draw_sample(len(classes), classes, sample(2000, 42), "training")[0] == rows  # the seed decides
    assert draw_sample(len(classes), classes, sample(2000, 43), "training")[0] != rows
    # Fewer rows than classes: as many classes as rows, one row each.
    few, _ = draw_sample(len(classes), classes, sample(50, 42), "training")
    assert len({classes[r] for r in few}) == 50
    # No labels: a plain seeded draw, still in file order.
    plain, note = draw_sample(1000, None, sample(10, 7), "training")
    assert len(set(plain)) == 10 and plain == sorted(plain) and plain != list(range(10))
    assert "seed 7, not stratified: no labels" in note
    # A sample as large as the split is the split.
    assert draw_sample(30, None, sample(30, 1), "training")[0] is None


def class_sorted(sst2_slice, folder):
    """The slice with its training rows sorted by label, negatives first."""
    folder.mkdir()
    header, *rows = read_tsv(sst2_slice / "train.tsv")
    write_tsv(folder / "train.tsv", [header] + sorted(rows, key=lambda r: r[1]))
    for name in ("dev.tsv", "labels.txt"):
        (folder / name).write_bytes((sst2_slice / name).read_bytes())
    return [r for r in sorted(rows, key=lambda r: r[1])]


def test_teacher_and_student_train_on_the_same_drawn_rows_and_seeds_draw_their_own(sst2_slice, tiny_models,
                                                                                   tmp_path, monkeypatch):
    """Through the API, with the training split each job reads captured on its way to training: for
    one --seed, trainer_teacher and distilled-bert train on the same rows of a class-sorted file, both
    classes in proportion, in file order; another seed draws other rows, and the teacher's logits over
    them are computed again, not taken from the first seed's cache entry."""
    rows = class_sorted(sst2_slice, tmp_path / "sorted")
    seen = []
    to_text_split = kd_bert.jobs.job.to_text_split

    def capture(raw, split, *args, **kwargs):
        result = to_text_split(raw, split, *args, **kwargs)
        if split == "train":
            seen.append(result.texts)
        return result

    monkeypatch.setattr(kd_bert.jobs.job, "to_text_split", capture)
    data = DataConfig(data_path=str(tmp_path / "sorted"), max_length=32, max_eval_samples=16)

    def train(role: str, **changes) -> TrainConfig:
        return TrainConfig(**{"output_dir": str(tmp_path / role), "num_train_epochs": 1, "batch_size": 16,
                              "learning_rate": 1e-3, "max_train_samples": 64, "seed": 5, "report_to": ["none"],
                              "mixed_precision": "no", **changes})

    teacher = train_teacher(str(tiny_models["teacher_base"]), data, train("teacher"))
    cache = tmp_path / "cache"

    def student(name: str, **changes) -> dict:
        config = DistillConfig(teacher_model=str(teacher.model_dir), student_model=str(tiny_models["student_base"]),
                               cache_dir=str(cache))
        return distill(config, data, train(name, **changes)).student.metrics

    first = student("student")
    assert first["train_examples"] == teacher.metrics["train_examples"] == 64
    assert seen[0] == seen[1]  # the same 64 sentences for the teacher and its student
    labels = {text: label for text, label in rows}
    negatives = sum(label == "0" for _, label in rows)
    drawn = Counter(labels[t] for t in seen[0])
    assert abs(drawn["0"] - 64 * negatives / len(rows)) <= 1 and drawn["0"] + drawn["1"] == 64
    order = {text: i for i, (text, _) in enumerate(rows)}
    assert [order[t] for t in seen[0]] == sorted(order[t] for t in seen[0])  # the file's order

    other = student("student-seed-6", seed=6)
    assert set(seen[2]) != set(seen[0]) and len(seen[2]) == 64
    assert first["teacher_cache"]["reused"] is False and other["teacher_cache"]["reused"] is False
    assert len(list((cache / "teacher_logits").glob("*.pt"))) == 2
    again = student("student-again")  # seed 5 again: its own rows, its own cache entry
    assert seen[3] == seen[0] and again["teacher_cache"]["reused"] is True

    # Without --max_train_samples the seed draws nothing: every seed reuses one entry.
    whole = [student(f"whole-{seed}", seed=seed, max_train_samples=None)["teacher_cache"]["reused"]
             for seed in (1, 2)]
    assert whole == [False, True] and len(list((cache / "teacher_logits").glob("*.pt"))) == 3


def test_a_resumption_with_another_seed_or_sample_size_is_refused(tmp_path):
    """The rows drawn follow --seed and --max_train_samples, so a checkpoint of one cannot continue as
    the other."""
    settings = {**TrainConfig(max_train_samples=64, seed=5).to_flags(), **DataConfig().to_flags()}
    recorded = {"run_args": run_args(settings, "no", 1)}
    check_same_run(recorded, run_args(settings, "no", 1), tmp_path)
    for change in ({"seed": 6}, {"max_train_samples": 65}):
        with pytest.raises(UserError, match=f"--{next(iter(change))} "):
            check_same_run(recorded, run_args({**settings, **change}, "no", 1), tmp_path)


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


def long_lines(result) -> list[str]:
    return [line for line in re.split(r"[\r\n]", result.stdout + result.stderr) if len(line) > LONGEST_LINE]


@pytest.mark.parametrize("samples,missing", [(300, 0), (40, 37)])
def test_a_77_class_sorted_csv_trains_on_a_sample_with_short_messages(tiny_models, tmp_path, samples, missing):
    """A 77-intent file sorted by class with --max_train_samples and --validation_split 0.1: every class
    drawn when the sample has room, a warning naming how many are missing when it has not (40
    examples for 77 classes), never a refusal; and no line of output longer than LONGEST_LINE."""
    intents_csv(tmp_path / "intents" / "train.csv", 77, 12)
    out = tmp_path / "out"
    result = run_script("trainer_teacher.py", "--data_path", tmp_path / "intents", "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--max_train_samples", samples,
                        "--validation_split", "0.1", "--num_train_epochs", "1", "--batch_size", "64",
                        "--max_length", "16", "--mixed_precision", "no", "--report_to", "none")
    assert result.returncode == 0, result
    assert not long_lines(result), long_lines(result)
    assert (f"--max_train_samples {samples}: drew {samples} of 832 training examples (seed 42, stratified by "
            f"label: 77 classes)") in result.stdout
    metrics = json.loads((out / "teacher" / "metrics.json").read_text())
    assert metrics["train_examples"] == samples and metrics["eval_examples"] == 92
    assert metrics["data"].get("classes_missing_from_sample", 0) == missing
    if missing:
        assert f"holds no example of {missing} of the 77 classes" in result.stdout + result.stderr


def test_a_validation_label_the_whole_training_split_lacks_is_still_refused(tiny_models, tmp_path):
    names = intents_csv(tmp_path / "intents" / "train.csv", 77, 10)
    dev = ["text,intent"] + [f"a text {i},{names[i % 77]}" for i in range(77)] + ["another text,not_an_intent"]
    (tmp_path / "intents" / "dev.csv").write_text("\n".join(dev) + "\n")
    (tmp_path / "intents" / "labels.txt").write_text("\n".join(names + ["not_an_intent"]) + "\n")
    out = tmp_path / "out"
    result = run_script("trainer_teacher.py", "--data_path", tmp_path / "intents", "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, "--max_train_samples", "100",
                        "--num_train_epochs", "1", "--max_length", "16")
    assert_clean_failure(result, "'not_an_intent' (1 row)", "never has (78 labels)", output_dir=out)
    assert not long_lines(result), long_lines(result)
