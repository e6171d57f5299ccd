"""Every distillation method end to end, as a user runs it, on tiny local models.

The tiny teacher has 2 layers of width 64; the tiny student base 1 layer of width 32, with the same
tokenizer, so TinyBERT's terms need their projection."""

import json

import pytest
import torch
from helpers import FAST_TRAINING, read_tsv, run_script
from safetensors.torch import load_file

QUICK = [*FAST_TRAINING[:1], "1", *FAST_TRAINING[2:], "--max_train_samples", "96"]  # one epoch, 96 sentences


def distill(sst2_slice, teacher, out, *flags):
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--output_dir", out, *QUICK, *flags)
    assert result.returncode == 0, result
    return result, json.loads((out / "student" / "metrics.json").read_text())


def evaluate_model(model, sst2_slice, tmp_path, *flags):
    out = tmp_path / f"eval-{model.name}.json"
    result = run_script("evaluate.py", "--model", model, "--data_path", sst2_slice, "--output", out,
                        "--latency_samples", "0", *flags)
    assert result.returncode == 0, result
    return json.loads(out.read_text())


def dev_texts(sst2_slice):
    return [r[0] for r in read_tsv(sst2_slice / "dev.tsv")[1:]]


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


def test_mean_pool_head_teacher(sst2_slice, tiny_models, tmp_path):
    from transformers import pipeline

    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path, "--head", "mean_pool", *QUICK)
    assert result.returncode == 0, result
    folder = tmp_path / "teacher"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "kd-mean-pool"
    scored = evaluate_model(folder, sst2_slice, tmp_path)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert scored["accuracy"] == pytest.approx(metrics["validation"]["accuracy"])
    classify = pipeline("text-classification", model=str(folder), trust_remote_code=True)
    texts = dev_texts(sst2_slice)[:20]
    labels = [out["label"] for out in classify(texts)]
    model = classify.model.eval()
    with torch.no_grad():
        logits = model(**classify.tokenizer(texts, padding=True, return_tensors="pt")).logits
    assert labels == [model.config.id2label[int(i)] for i in logits.argmax(-1)]


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
    assert json.loads(next((tmp_path / "cache" / "teacher_logits").glob("*.json")).read_text())["num_examples"] == 288
    again = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                       "--output_dir", tmp_path / "again", *QUICK, "--student_model", tiny_models["student_base"],
                       "--augment", "2", "--cache_dir", tmp_path / "cache")
    assert again.returncode == 0 and "reused" in again.stdout  # the same copies: the same cache key


@pytest.mark.parametrize("flags,phrase", [
    (["--student_model", "bilstm", "--hidden_weight", "1"], "BiLSTM student has no hidden states"),
    (["--hidden_weight", "1", "--teacher_logits", "cached"], "--teacher_logits online"),
    (["--stage", "intermediate"], "all their weights are 0"),
    (["--augment", "2", "--alpha", "0"], "only the teacher can label"),
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
