"""distilled-bert.py as a user runs it, on tiny local models: every distillation method end to end, the
student a plain Hugging Face model, students with their own tokenizer, unlabeled transfer data from a
messy file, and the flag combinations and teachers that cannot work refused before anything trains.

The tiny teacher has 2 layers of width 64; the tiny student base 1 layer of width 32, with the same
tokenizer, so TinyBERT's terms need their projection."""

import json
import shutil

import pytest
import torch
from helpers import (
    FAST_TRAINING,
    QUICK,
    assert_clean_failure,
    assert_hf_model_folder,
    dev_texts,
    evaluate_model,
    load_plain,
    read_tsv,
    run_script,
)
from safetensors.torch import load_file

from kd_bert import DistillConfig, TrainConfig
from kd_bert.config import DataConfig
from kd_bert.errors import UserError


def distill(sst2_slice, teacher, out, *flags):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--output_dir", out, *QUICK, *flags)
    assert result.returncode == 0, result
    return result, json.loads((out / "student" / "metrics.json").read_text())


# ---------------------------------------------------------------- the student it saves


def test_student_is_a_plain_hugging_face_model(trained_student, trained_teacher):
    metrics = assert_hf_model_folder(trained_student, "student")
    assert metrics["teacher_model"] == str(trained_teacher) and metrics["alpha"] == 0.5
    assert {"train_kd_loss", "train_ce_loss"} <= set(metrics["history"][0])
    assert metrics["num_parameters"] < metrics["teacher_num_parameters"]


def test_student_with_its_own_tokenizer(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result = run_script(
        "distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
        "--student_model", tiny_models["student_own_vocab"], "--output_dir", tmp_path, "--num_train_epochs", "1",
        "--max_train_samples", "64",
    )
    assert result.returncode == 0, result
    model, tokenizer = load_plain(tmp_path / "student")
    assert len(tokenizer) == 300 and model.config.vocab_size == 300  # the student's own vocabulary


def test_alpha_zero_never_loads_the_teacher(sst2_slice, trained_teacher, tiny_models, tmp_path):
    broken = tmp_path / "broken-teacher"
    shutil.copytree(trained_teacher, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    common = ["--data_path", sst2_slice, "--teacher_model", broken, "--student_model", tiny_models["student_base"],
              "--num_train_epochs", "1", "--max_train_samples", "32"]
    result = run_script("distilled-bert.py", *common, "--alpha", "0", "--output_dir", tmp_path / "plain")
    assert result.returncode == 0, result
    metrics = json.loads((tmp_path / "plain" / "student" / "metrics.json").read_text())
    assert metrics["teacher_model"] is None and set(metrics["history"][0]) >= {"train_ce_loss"}
    assert "train_kd_loss" not in metrics["history"][0]

    result = run_script("distilled-bert.py", *common, "--alpha", "0.5", "--output_dir", tmp_path / "kd")
    assert result.returncode == 2 and "could not be read" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "kd").exists() or not any((tmp_path / "kd").iterdir())


def test_the_seed_readme_line_with_its_typo(sst2_slice, trained_teacher, tiny_models, tmp_path):
    # The original README wrote --output_air for --output_dir.
    result = run_script("distilled-bert.py", "--teacher_model", trained_teacher, "--output_air", "./",
                        "--data_path", sst2_slice, "--student_model", tiny_models["student_base"],
                        "--num_train_epochs", "1", "--max_train_samples", "32", cwd=tmp_path)
    assert result.returncode == 0, result
    assert (tmp_path / "student" / "config.json").is_file()


# ---------------------------------------------------------------- every method


def test_student_built_from_the_teachers_layers(sst2_slice, trained_teacher, tmp_path, isolated_cache):
    from transformers import AutoModelForSequenceClassification

    _, metrics = distill(sst2_slice, trained_teacher, tmp_path, "--student_init", "teacher_layers",
                         "--student_layers", "1", "--cos_weight", "1.0")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    teacher = AutoModelForSequenceClassification.from_pretrained(trained_teacher)
    assert model.config.num_hidden_layers == 1 and teacher.config.num_hidden_layers == 2
    assert model.config.hidden_size == teacher.config.hidden_size
    # It started as the teacher's embeddings and last layer (1 of 2 kept: the last), and 6 AdamW steps at
    # lr 1e-3 move a weight by 0.006 at most: still next to those, and far from the teacher's first layer.
    student, original = model.state_dict(), teacher.state_dict()

    def distance(name: str, teacher_name: str) -> float:
        return (student[name] - original[teacher_name]).abs().max().item()

    embeddings = "bert.embeddings.word_embeddings.weight"
    query = "bert.encoder.layer.{}.attention.self.query.weight"
    assert distance(embeddings, embeddings) < 0.01
    assert distance(query.format(0), query.format(1)) < 0.01 < 0.05 < distance(query.format(0), query.format(0))
    assert metrics["history"][0]["train_cos_loss"] > 0  # DistilBERT's cosine term was trained on
    # Hidden states are needed at every step: the teacher ran online, and nothing was cached.
    assert not list(isolated_cache.rglob("*.pt"))


def test_tinybert_two_stages_with_a_projection_that_is_not_saved(sst2_slice, trained_teacher, tiny_models, tmp_path):
    weights = ["--embedding_weight", "1", "--hidden_weight", "1", "--attention_weight", "1"]
    _, first = distill(sst2_slice, trained_teacher, tmp_path / "stage1", "--student_model", tiny_models["student_base"],
                       *weights, "--stage", "intermediate")
    history = first["history"][0]
    assert {"train_embedding_loss", "train_hidden_loss", "train_attention_loss"} <= set(history)
    assert "train_kd_loss" not in history and "train_ce_loss" not in history
    saved = load_file(str(tmp_path / "stage1" / "student" / "model.safetensors"))
    base = load_file(str(tiny_models["student_base"] / "model.safetensors"))
    # The student alone: the base's weights and a classifier, no 32 -> 64 projection.
    assert {k.removeprefix("bert.") for k in saved} - set(base) == {"classifier.weight", "classifier.bias"}
    _, second = distill(sst2_slice, trained_teacher, tmp_path / "stage2", "--student_model",
                        tmp_path / "stage1" / "student", "--stage", "prediction", *weights)
    assert {"train_kd_loss", "train_ce_loss"} <= set(second["history"][0])
    assert "train_hidden_loss" not in second["history"][0]  # --stage prediction drops the intermediate terms


def distill_in_process(sst2_slice, teacher, student, out, **settings):
    """QUICK through the API (no subprocess): the saved student's weights and its metrics."""
    from kd_bert import DataConfig, DistillConfig, TrainConfig
    from kd_bert import distill as run

    result = run(DistillConfig(teacher_model=str(teacher), student_model=str(student), **settings),
                 DataConfig(data_path=str(sst2_slice), max_length=64),
                 TrainConfig(output_dir=str(out), num_train_epochs=1, batch_size=16, learning_rate=1e-3,
                             max_train_samples=96, report_to=["none"]))
    return load_file(str(result.student.model_dir / "model.safetensors")), result.student.metrics


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_attention_kl_and_a_layer_map_change_what_the_student_learns(sst2_slice, trained_teacher, tiny_models,
                                                                     tmp_path):
    """The same student from the same start, the attention term only changed: the default layer map is
    the teacher's last layer ([2]), --layer_map 1 learns from another layer, and KL from MSE."""
    runs = {}
    for name, settings in {"kl default": {}, "kl 2": dict(layer_map=[2]), "kl 1": dict(layer_map=[1]),
                           "mse 1": dict(layer_map=[1], attention_loss="mse")}.items():
        runs[name] = distill_in_process(sst2_slice, trained_teacher, tiny_models["student_base"],
                                        tmp_path / name.replace(" ", "-"), attention_weight=1.0,
                                        **{"attention_loss": "kl", **settings})
        assert runs[name][1]["history"][0]["train_attention_loss"] > 0
    assert same_weights(runs["kl default"][0], runs["kl 2"][0])
    assert not same_weights(runs["kl 1"][0], runs["kl 2"][0])
    assert not same_weights(runs["kl 1"][0], runs["mse 1"][0])


def test_mse_on_logits(sst2_slice, trained_teacher, tiny_models, tmp_path, isolated_cache):
    """--kd_loss mse trains the student otherwise than kl from the same start, with the cached logits of
    one teacher pass, and no cross-entropy at alpha 1."""
    mse, metrics = distill_in_process(sst2_slice, trained_teacher, tiny_models["student_base"], tmp_path / "mse",
                                      kd_loss="mse", alpha=1.0)
    assert metrics["history"][0]["train_kd_loss"] > 0 and "train_ce_loss" not in metrics["history"][0]
    assert len(list(isolated_cache.rglob("*.pt"))) == 1  # the teacher's logits, cached
    kl, _ = distill_in_process(sst2_slice, trained_teacher, tiny_models["student_base"], tmp_path / "kl",
                               kd_loss="kl", alpha=1.0)
    assert not same_weights(mse, kl)
    assert len(list(isolated_cache.rglob("*.pt"))) == 1  # the kl run reused them


@pytest.mark.precision
def test_bilstm_student_loads_like_any_other(sst2_slice, trained_teacher, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    # In full precision, like the plain transformers predictions the scores are checked against.
    _, metrics = distill(sst2_slice, trained_teacher, tmp_path, "--student_model", "bilstm", "--mixed_precision", "no",
                         "--bilstm_embedding_dim", "16", "--bilstm_hidden_size", "16", "--bilstm_mlp_size", "16")
    folder = tmp_path / "student"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "kd-bilstm"
    assert (folder / "custom_models.py").is_file() and (folder / "tokenizer.json").is_file()
    scored = evaluate_model(folder, sst2_slice, tmp_path, "--mixed_precision", "no")
    assert scored["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])
    # Plain transformers, with the model code saved in the folder: the same predictions.
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    gold = [int(r[1]) for r in read_tsv(sst2_slice / "dev.tsv")[1:]]
    with torch.no_grad():
        predicted = [int(model(**tokenizer(t, return_tensors="pt")).logits.argmax(-1)) for t in dev_texts(sst2_slice)]
    assert scored["accuracy"] == pytest.approx(sum(p == g for p, g in zip(predicted, gold)) / len(gold))


def test_bilstm_with_its_own_tokenizer_and_sizes(sst2_slice, trained_teacher, tiny_models, tmp_path):
    from transformers import AutoTokenizer

    own = tiny_models["student_own_vocab"]
    distill(sst2_slice, trained_teacher, tmp_path, "--student_model", "bilstm", "--student_tokenizer", own,
            "--bilstm_embedding_dim", "8", "--bilstm_hidden_size", "8", "--bilstm_layers", "2",
            "--bilstm_mlp_size", "8")
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["num_layers"] == 2 and config["embedding_dim"] == 8 and config["mlp_size"] == 8
    saved = AutoTokenizer.from_pretrained(tmp_path / "student")
    assert config["vocab_size"] == len(saved) == len(AutoTokenizer.from_pretrained(own))  # not the teacher's vocabulary
    assert len(saved) != len(AutoTokenizer.from_pretrained(trained_teacher))


def test_kd_vs_no_kd_in_one_command(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result, _ = distill(sst2_slice, trained_teacher, tmp_path / "both", "--student_model", tiny_models["student_base"],
                        "--compare_no_kd")
    assert "with KD" in result.stdout and "without KD" in result.stdout
    table = json.loads((tmp_path / "both" / "kd_vs_no_kd.json").read_text())
    no_kd = json.loads((tmp_path / "both" / "student_no_kd" / "metrics.json").read_text())
    assert table["accuracy"]["no_kd"] == no_kd["validation"]["accuracy"]
    assert table["accuracy"]["difference"] == pytest.approx(table["accuracy"]["kd"] - table["accuracy"]["no_kd"])
    # The no-KD half is exactly a plain --alpha 0 run from the same start.
    _, alone = distill(sst2_slice, trained_teacher, tmp_path / "alone", "--student_model", tiny_models["student_base"],
                       "--alpha", "0")
    assert [h["train_loss"] for h in alone["history"]] == [h["train_loss"] for h in no_kd["history"]]
    assert alone["validation"]["accuracy"] == no_kd["validation"]["accuracy"]


def test_augmented_transfer_set_is_labeled_by_the_teacher(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result, metrics = distill(sst2_slice, trained_teacher, tmp_path, "--student_model", tiny_models["student_base"],
                              "--augment", "2", "--cache_dir", tmp_path / "cache")
    assert metrics["augmented_examples"] == 192 and metrics["train_examples"] == 288
    parts = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "teacher_logits").glob("*.json")]
    assert sorted(p["num_examples"] for p in parts) == [96, 192]  # the sentences and their copies, cached apart
    again = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                       "--output_dir", tmp_path / "again", *QUICK, "--student_model", tiny_models["student_base"],
                       "--augment", "2", "--cache_dir", tmp_path / "cache")
    assert again.returncode == 0 and "reused" in again.stdout  # the same copies: the same cache key


def test_word_replacement_draws_from_the_teachers_embedding_table(sst2_slice, trained_teacher, tiny_models, tmp_path):
    """--augment_replace: other copies (so other cached logits), and the neighbours logged are the
    teacher's, counted independently from its embedding table."""
    common = ["--student_model", tiny_models["student_base"], "--augment", "1", "--max_train_samples", "320",
              "--cache_dir", tmp_path / "cache"]
    distill(sst2_slice, trained_teacher, tmp_path / "plain", *common)
    result, metrics = distill(sst2_slice, trained_teacher, tmp_path, *common, "--augment_replace", "0.4")
    copies = metrics["teacher_cache"]["parts"][1]
    assert metrics["augmented_examples"] == 320 and copies["reused"] is False  # other copies than --augment's
    model, tokenizer = load_plain(trained_teacher)
    words = {w.lower() for r in read_tsv(sst2_slice / "train.tsv")[1:] for w in r[0].split()}
    known = {t for t in tokenizer.get_vocab() if t.isalpha() and len(t) >= 2} - set(tokenizer.all_special_tokens)
    assert f"--augment_replace 0.4): {len(words & known)} words of the training set" in result.stdout
    assert json.loads((tmp_path / "student" / "training_args.json").read_text())["args"]["augment_replace"] == 0.4


# ---------------------------------------------------------------- unlabeled transfer data


def messy_copy(sst2_slice, folder):
    """The slice's train split as a CSV with CRLF line ends, a BOM, blank lines, a quoted line break,
    two broken rows and a repeated header; its dev split as it is."""
    rows = read_tsv(sst2_slice / "train.tsv")[1:]
    lines = ["sentence,label"]
    for i, (text, label) in enumerate(rows):
        lines.append('"' + text.replace('"', '""') + '",' + label)
        if i == 10:
            lines += ["", '"a sentence broken', 'over two lines",1']
        if i == 20:
            lines += ["a row that lost its label", "sentence,label", ",0"]
    folder.mkdir()
    (folder / "train.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    (folder / "dev.tsv").write_text((sst2_slice / "dev.tsv").read_text())
    (folder / "labels.txt").write_text((sst2_slice / "labels.txt").read_text())
    return len(rows) + 1, 3  # rows kept, rows dropped


@pytest.mark.precision
def test_messy_file_distills_with_unlabeled_transfer_data(sst2_slice, trained_teacher, tiny_models, tmp_path):
    data = tmp_path / "messy"
    kept, dropped = messy_copy(sst2_slice, data)
    unlabeled = [r[1] for r in read_tsv(sst2_slice / "test.tsv")[1:]]  # SST-2's unlabeled test sentences
    (tmp_path / "unlabeled.txt").write_text("\n".join(unlabeled) + "\n")
    # In full precision: the cached logits are checked against plain transformers' fp32 ones.
    args = ["--data_path", data, "--teacher_model", trained_teacher, "--student_model", tiny_models["student_base"],
            "--transfer_data", tmp_path / "unlabeled.txt", *FAST_TRAINING, "--num_train_epochs", "1",
            "--mixed_precision", "no"]

    refused = run_script("distilled-bert.py", *args, "--output_dir", tmp_path / "refused")
    assert refused.returncode == 2 and "3 bad rows" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "refused").exists()

    out = tmp_path / "out"
    result = run_script("distilled-bert.py", *args, "--on_bad_rows", "skip", "--output_dir", out)
    assert result.returncode == 0, result
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["data"]["dropped_rows"] == {"train": dropped, "validation": 0}
    assert metrics["train_examples"] == kept + len(unlabeled) and metrics["transfer_examples"] == len(unlabeled)
    # The teacher labeled the unlabeled texts once, into the cache (a part of their own), exactly as it labels
    # training sentences.
    parts = {p["part"]: p for p in metrics["teacher_cache"]["parts"]}
    assert sorted(parts) == ["training sentences", "unlabeled texts"]
    assert len(list((tmp_path / "kd-bert-cache" / "teacher_logits").glob("*.pt"))) == 2
    logits = torch.cat([torch.load(parts[name]["path"], weights_only=True)["logits"]
                        for name in ("training sentences", "unlabeled texts")])
    assert logits.shape == (kept + len(unlabeled), 2)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    teacher = AutoModelForSequenceClassification.from_pretrained(trained_teacher).eval()
    tokens = AutoTokenizer.from_pretrained(trained_teacher)(unlabeled[:8], truncation=True, max_length=64,
                                                            padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = teacher(**tokens).logits
    assert torch.allclose(logits[kept:kept + 8], expected, atol=1e-4)


def test_pure_distillation_on_unlabeled_text_alone(sst2_slice, trained_teacher, tiny_models, tmp_path):
    data = tmp_path / "dev-only"
    data.mkdir()
    (data / "dev.tsv").write_text((sst2_slice / "dev.tsv").read_text())
    (data / "labels.txt").write_text((sst2_slice / "labels.txt").read_text())
    texts = [r[0] for r in read_tsv(sst2_slice / "train.tsv")[1:]]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    base = ["--data_path", data, "--teacher_model", trained_teacher, "--student_model", tiny_models["student_base"],
            "--transfer_data", tmp_path / "texts.txt", *FAST_TRAINING, "--num_train_epochs", "1"]
    needs_labels = run_script("distilled-bert.py", *base, "--output_dir", tmp_path / "mixed")
    assert needs_labels.returncode == 2 and "no 'train' split" in needs_labels.stderr
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", *base, "--alpha", "1", "--output_dir", out)
    assert result.returncode == 0, result
    metrics = json.loads((out / "student" / "metrics.json").read_text())
    assert metrics["train_examples"] == len(texts) and metrics["eval_examples"] == len(read_tsv(data / "dev.tsv")) - 1
    assert 0 <= metrics["validation"]["accuracy"] <= 1


# ---------------------------------------------------------------- what cannot work, refused before anything trains


def test_plan_checks_refuse_flag_combinations_before_loading_anything(tmp_path):
    from kd_bert import distill

    data, train = DataConfig(data_path=str(tmp_path / "missing")), TrainConfig(output_dir=str(tmp_path))
    with pytest.raises(UserError, match="exclude each other"):
        distill(DistillConfig(student_model="bilstm", student_init="teacher_layers"), data, train)
    with pytest.raises(UserError, match="--augment adds sentences that only the teacher can label"):
        distill(DistillConfig(alpha=0.0, augment=1), data, train)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags,phrase", [
    (["--student_model", "bilstm", "--hidden_weight", "1"], "BiLSTM student has no hidden states"),
    (["--hidden_weight", "1", "--teacher_logits", "cached"], "--teacher_logits online"),
    (["--stage", "intermediate"], "all their weights are 0"),
    (["--augment", "2", "--alpha", "0"], "only the teacher can label"),
    (["--augment_replace", "0.4"], "add --augment N"),
    (["--augment", "1", "--augment_replace", "1.5"], "--augment_replace must be in [0, 1]"),
    (["--student_layers", "1"], "--student_init teacher_layers"),
])
def test_flag_combinations_that_cannot_work(flags, phrase, sst2_slice, trained_teacher, tiny_models, tmp_path):
    args = flags if "bilstm" in flags else ["--student_model", str(tiny_models["student_base"]), *flags]
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--output_dir", tmp_path / "out", *args)
    assert result.returncode == 2 and phrase in result.stderr and "Traceback" not in result.stderr, result
    assert not (tmp_path / "out").exists()


def test_intermediate_terms_refuse_a_student_with_its_own_tokenizer(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_own_vocab"], "--hidden_weight", "1",
                        "--output_dir", tmp_path / "out", *QUICK)
    assert result.returncode == 2 and "same tokenizer" in result.stderr, result


def test_teacher_whose_labels_differ_from_the_data(sst2_slice, trained_teacher, tiny_models, tmp_path):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--label_names", "positive,negative",
                        "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "label maps differ", "{0: positive, 1: negative}", output_dir=tmp_path / "out")


def test_a_teacher_with_another_number_of_labels_is_refused(trained_teacher, tiny_models, tmp_path):
    (tmp_path / "three.csv").write_text("sentence,label\n" + "".join(f"text {i},{i % 3}\n" for i in range(30)))
    result = run_script("distilled-bert.py", "--data_path", tmp_path / "three.csv", "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path / "out")
    assert result.returncode == 2 and "has 2 labels" in result.stderr and "the data has 3" in result.stderr, result
    assert not (tmp_path / "out").exists()
