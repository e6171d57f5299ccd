"""From the data read to the splits a job trains on: the text and label columns, bad rows (--on_bad_rows),
empty splits, the validation split held out when the data has none, the seeded, stratified samples of
--max_train_samples and --max_eval_samples (the same rows for the same seed and data in every script, every
class of a class-sorted file, and a teacher-logit cache entry that follows the rows drawn), and unlabeled
--transfer_data."""

import csv
import json
from collections import Counter
from dataclasses import replace

import pytest
from helpers import (
    FAST_TRAINING,
    assert_clean_failure,
    intents_csv,
    long_lines,
    one_line,
    read_split,
    read_tsv,
    run_script,
    write_intents,
    write_tsv,
)

import kd_bert.jobs.distill
import kd_bert.jobs.job
from kd_bert import DataConfig, DistillConfig, TrainConfig, distill, train_teacher
from kd_bert.data.read import Columns, RawData, RawSplit, load_raw
from kd_bert.data.splits import Sample, draw_sample, load_unlabeled, resolve_columns
from kd_bert.errors import UserError

# ---------------------------------------------------------------- columns


def test_columns_are_detected_when_unambiguous(tmp_path):
    (tmp_path / "train.csv").write_text("review,polarity\ngreat fun,1\ndull,0\n")
    raw = load_raw(str(tmp_path))
    cols = resolve_columns(raw, None, None)
    assert (cols.text, cols.label) == ("review", "polarity")


def test_ambiguous_text_column_asks_for_the_flag(tmp_path):
    (tmp_path / "train.csv").write_text("title,body,label\nA film,great fun,1\nB film,dull,0\n")
    with pytest.raises(UserError, match="--text_column"):
        resolve_columns(load_raw(str(tmp_path)), None, None)


def test_missing_column_lists_the_columns(sst2_slice):
    with pytest.raises(UserError, match=r"'review' not found.*columns: sentence, label"):
        resolve_columns(load_raw(str(sst2_slice)), "review", None)


def test_missing_text_column_lists_the_columns(sst2_slice, tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--text_column", "review",
                        "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "'review' not found", "sentence, label", "--text_column", output_dir=tmp_path / "out")


def test_missing_label_column_lists_the_columns(sst2_slice, tiny_models, tmp_path):
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--label_column", "stars",
                        "--model_name_or_path", tiny_models["teacher_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "'stars' not found", "sentence, label", "--label_column", output_dir=tmp_path / "out")


def test_glue_sts_b_columns_are_detected():
    # GLUE's STS-B TSVs: many columns; the pair, the index and the score are found without flags.
    names = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"]
    raw = RawData("STS-B", {"train": RawSplit({name: ["x"] for name in names})})
    assert resolve_columns(raw, None, None) == Columns(text="sentence1", label="score", index="index", pair="sentence2")


# ---------------------------------------------------------------- bad rows and empty splits


BROKEN = ("sentence,label\n"
          "fine one,1\n"             # line 2
          "missing its label\n"      # line 3: one field
          "too,many,fields,0\n"      # line 4
          "   ,1\n"                  # line 5: whitespace text
          "no label here,\n"         # line 6
          "sentence,label\n"         # line 7: a repeated header
          "fine two,0\n")


def test_bad_rows_stop_the_run_by_default_naming_file_lines_and_count(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(BROKEN)
    with pytest.raises(UserError) as caught:
        read_split(path)
    message = str(caught.value)
    for part in (str(path), "5 bad rows", "line 3: 1 field where the header has 2", "line 4: 4 fields",
                 "line 5: empty text", "line 6: no label", "line 7: a repeated header line",
                 "--on_bad_rows skip"):
        assert part in message, (part, message)


@pytest.mark.parametrize("policy", ["warn", "skip"])
def test_warn_and_skip_drop_the_bad_rows_and_count_them(tmp_path, policy):
    path = tmp_path / "train.csv"
    path.write_text(BROKEN)
    split, names, raw, said = read_split(path, policy)
    assert split.texts == ["fine one", "fine two"]
    assert names == ["LABEL_0", "LABEL_1"]  # no class named 'label' from the repeated header
    assert raw.dropped["train"] == 5
    assert len(said) == 1 and "dropped 5 bad rows" in said[0]
    assert ("line 7: a repeated header line" in said[0]) == (policy == "warn")  # warn lists them


def test_empty_split(trained_teacher, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("sentence\tlabel\ngood\t1\n")
    (data / "dev.tsv").write_text("sentence\tlabel\n")
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", data)
    assert_clean_failure(result, "'validation' split", "is empty")


# ---------------------------------------------------------------- the validation split held out


def test_missing_validation_split_is_carved_from_train(sst2_slice, tiny_models, tmp_path):
    data = write_intents(tmp_path / "data", sst2_slice, train_per_class=30, with_dev=False)
    result = run_script("trainer_teacher.py", "--data_path", data, "--model_name_or_path", tiny_models["teacher_base"],
                        "--output_dir", tmp_path, *FAST_TRAINING)
    assert result.returncode == 0, result
    assert "holding out 10%" in result.stdout
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["train_examples"] == 108 and metrics["eval_examples"] == 12
    per_class = metrics["validation"]["per_class"]
    assert sorted(v["support"] for v in per_class.values()) == [3, 3, 3, 3]  # stratified
    out = tmp_path / "eval.json"
    scored = run_script("evaluate.py", "--model", tmp_path / "teacher", "--data_path", data, "--output", out,
                        "--latency_samples", "0")
    assert scored.returncode == 0, scored
    evaluated = json.loads(out.read_text())  # the same 12 held-out examples, not training ones
    assert evaluated["num_examples"] == 12
    assert evaluated["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])


def test_a_lone_file_holds_out_a_validation_split_that_evaluate_scores_alone(sst2_slice, tiny_models, tmp_path):
    """A lone CSV whose name is no split name trains with 10% held out (stratified, said in one line), as a
    folder with only a train file does; evaluate.py on that file then scores exactly the held-out rows,
    which the run never trained on, and scores a file the model was not trained on whole."""
    rows = [[str(i), text, label] for i, (text, label) in enumerate(read_tsv(sst2_slice / "train.tsv")[1:121])]
    lone = tmp_path / "reviews.csv"
    with open(lone, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "sentence", "label"], *rows])
    out = tmp_path / "out"
    trained = run_script("trainer_teacher.py", "--data_path", lone, "--model_name_or_path", tiny_models["teacher_base"],
                         "--output_dir", out, *FAST_TRAINING, "--num_train_epochs", "1", "--mixed_precision", "no")
    assert trained.returncode == 0, trained
    held = round(0.1 * len(rows))  # 12 of the 120 rows
    said = [line for line in trained.stdout.splitlines() if "holding out" in line]
    assert len(said) == 1 and f"{lone} has no validation split: holding out 10% of its examples ({held} examples, " \
                               f"stratified by label" in said[0], trained
    assert "no labeled validation split" not in trained.stdout + trained.stderr
    metrics = json.loads((out / "teacher" / "metrics.json").read_text())
    assert (metrics["train_examples"], metrics["eval_examples"]) == (len(rows) - held, held)

    def scored(data, *flags) -> tuple[dict, list[str]]:
        name = f"{data.stem}{'-'.join(map(str, flags))}"
        result = run_script("evaluate.py", "--model", out / "teacher", "--data_path", data, "--max_length", "64",
                            "--latency_samples", "0", "--mixed_precision", "no", "--output", tmp_path / f"{name}.json",
                            "--predictions_file", tmp_path / f"{name}.tsv", *flags)
        assert result.returncode == 0, result
        ids = [line.split("\t")[0] for line in (tmp_path / f"{name}.tsv").read_text().splitlines()[1:]]
        return json.loads((tmp_path / f"{name}.json").read_text()), ids

    validation, held_ids = scored(lone)
    _, train_ids = scored(lone, "--split", "train")
    assert len(held_ids) == validation["num_examples"] == held and len(train_ids) == len(rows) - held
    assert set(held_ids).isdisjoint(train_ids) and sorted(held_ids + train_ids, key=int) == [r[0] for r in rows]
    labels = {i: label for i, _, label in rows}
    for label, count in Counter(labels.values()).items():  # stratified: each class in proportion
        assert abs(sum(labels[i] == label for i in held_ids) - held * count / len(rows)) < 1
    assert validation["confusion_matrix"] == metrics["validation"]["confusion_matrix"]  # the run's own validation
    # The same rows in a file the model was not trained on: all of them are scored.
    other = tmp_path / "other.csv"
    other.write_bytes(lone.read_bytes())
    whole, ids = scored(other)
    assert whole["num_examples"] == len(rows) and ids == [r[0] for r in rows]


# ---------------------------------------------------------------- samples


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


# ---------------------------------------------------------------- unlabeled --transfer_data


def test_unlabeled_texts_from_a_text_file_or_any_data_form(tmp_path):
    (tmp_path / "more.txt").write_bytes(b"\xef\xbb\xbffirst text\r\n\r\nsecond text\r\n")
    (tmp_path / "more.csv").write_text("review,stars\nthird text,5\n,4\n")
    columns = resolve_columns(load_raw(str(tmp_path / "more.csv")), "review", None)
    assert load_unlabeled(str(tmp_path / "more.txt"), columns, "error").texts == ["first text", "second text"]
    unlabeled = load_unlabeled(str(tmp_path / "more.csv"), replace(columns, text="sentence"), "skip")
    assert unlabeled.texts == ["third text"] and unlabeled.labels is None


def test_transfer_data_errors_name_the_flag_and_the_txt_form_before_the_teacher_loads(
        sst2_slice, trained_teacher, tiny_models, tmp_path, monkeypatch):
    columns = resolve_columns(load_raw(str(sst2_slice)), None, None)
    (tmp_path / "notes.docx").write_text("x")
    (tmp_path / "empty").mkdir()
    for path, phrase in ((tmp_path / "missing.txt", "no such file or folder"),
                         (tmp_path / "missing.csv", "no such file or folder"),
                         (tmp_path / "notes.docx", "or .txt (one text per line)"),
                         (tmp_path / "empty", "or give a .txt file")):
        with pytest.raises(UserError) as caught:
            load_unlabeled(str(path), columns, "error")
        message = one_line(str(caught.value))
        assert message.startswith(f"--transfer_data {path}") and phrase in message and "--data_path" not in message

    loaded = []
    monkeypatch.setattr(kd_bert.jobs.distill, "load_teacher", lambda *args: loaded.append(args))
    config = DistillConfig(teacher_model=str(trained_teacher), student_model=str(tiny_models["student_base"]),
                           transfer_data=str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="^--transfer_data .*missing.txt: no such file"):
        distill(config, DataConfig(data_path=str(sst2_slice), max_length=32),
                TrainConfig(output_dir=str(tmp_path / "out"), report_to=["none"]))
    assert not loaded and not (tmp_path / "out" / "student").exists()


def test_the_selection_split_is_stratified_disjoint_and_the_same_for_every_seed():
    from kd_bert.data.read import TextSplit
    from kd_bert.data.splits import carve_selection

    labels = [0] * 60 + [1] * 30 + [2] * 10
    split = TextSplit("train", [f"text {i}" for i in range(100)], labels, list(range(100)))
    rest, selection, note = carve_selection(split, 0.2, classes=True)
    assert len(selection) == 20 and len(rest) == 80 and "20 of the 100" in note
    counts = Counter(selection.labels)
    assert all(abs(counts[c] - 0.2 * n) <= 1 for c, n in ((0, 60), (1, 30), (2, 10)))  # each class in proportion
    assert set(selection.texts).isdisjoint(rest.texts) and sorted(selection.index + rest.index) == list(range(100))
    again, _, _ = carve_selection(split, 0.2, classes=True)
    assert again.texts == rest.texts  # a fixed seed: every run and every trial holds out the same rows
    unlabeled = TextSplit("train", ["a", "b", "c"], None, [0, 1, 2])
    with pytest.raises(UserError, match="training split has no labels"):
        carve_selection(unlabeled, 0.5, classes=True)
    with pytest.raises(UserError, match="leaves at least one example on each side"):
        carve_selection(TextSplit("train", ["a", "b"], [0, 1], [0, 1]), 0.1, classes=True)
