"""Loading and saving model folders: a save never leaves a half-written model where a good one was; a folder
missing a part, or with weights cut short, is one clear line; --max_length is checked against the models'
positions and the embedding table against the tokenizer before anything trains; and a head that does not
fit its config is said to be that, not corrupt."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import assert_clean_failure, listing, run_script

from kd_bert import DataConfig, DistillConfig, EvalConfig, TrainConfig, UserError, distill, evaluate, train_teacher
from kd_bert.models.load import save_model_atomically


class FakeModel:
    def __init__(self, payload):
        self.payload = payload

    def save_pretrained(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_text(self.payload)


class FailingTokenizer:
    def save_pretrained(self, folder):
        raise OSError("disk full")


class Tokenizer:
    def save_pretrained(self, folder):
        (folder / "tokenizer.json").write_text("{}")


def test_save_replaces_the_previous_model_whole(tmp_path):
    out = tmp_path / "student"
    save_model_atomically(FakeModel("v1"), Tokenizer(), out, {"metrics.json": {"epoch": 1}})
    save_model_atomically(FakeModel("v2"), Tokenizer(), out, {"metrics.json": {"epoch": 2}})
    assert (out / "model.safetensors").read_text() == "v2"
    assert json.loads((out / "metrics.json").read_text()) == {"epoch": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]


def test_a_failed_save_keeps_the_previous_model(tmp_path):
    out = tmp_path / "student"
    save_model_atomically(FakeModel("good"), Tokenizer(), out, {"metrics.json": {"epoch": 1}})
    with pytest.raises(UserError, match=f"^cannot write {out} \\(disk full\\); {out} is unchanged$"):
        save_model_atomically(FakeModel("new"), FailingTokenizer(), out, {})
    assert (out / "model.safetensors").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]  # no partial folder left


@pytest.mark.parametrize("missing,phrase", [
    ("model.safetensors", "cannot load model weights"),
    ("config.json", "no config.json"),
    ("tokenizer.json", "cannot load its tokenizer"),
])
def test_teacher_folder_missing_a_part(missing, phrase, sst2_slice, trained_teacher, tiny_models, tmp_path):
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(trained_teacher, teacher)
    (teacher / missing).unlink()
    if missing == "tokenizer.json":  # the slow-tokenizer files would stand in for it
        for extra in teacher.glob("vocab*"):
            extra.unlink()
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, phrase, output_dir=tmp_path / "out")


def test_corrupt_teacher_weights(sst2_slice, trained_teacher, tiny_models, tmp_path):
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(trained_teacher, teacher)
    weights = teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy cut short
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", teacher,
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "could not be read", "corrupt", output_dir=tmp_path / "out")


def test_max_length_beyond_the_models_positions(tiny_models, trained_teacher, sst2_slice, tmp_path):
    data = DataConfig(data_path=str(sst2_slice), max_length=100000)
    with pytest.raises(UserError, match="--max_length 100000 is more than --model_name_or_path .*128 positions.*128"):
        train_teacher(str(tiny_models["teacher_base"]), data, TrainConfig(output_dir=str(tmp_path / "a")))
    with pytest.raises(UserError, match="--max_length 100000 is more than --teacher_model"):
        distill(DistillConfig(teacher_model=str(trained_teacher), student_model=str(tiny_models["student_base"])),
                data, TrainConfig(output_dir=str(tmp_path / "b")))
    with pytest.raises(UserError, match="--max_length 100000 is more than --model"):
        evaluate(EvalConfig(model=str(trained_teacher)), data)
    with pytest.raises(UserError, match="--max_length 100000 is more than --model"):
        evaluate(EvalConfig(model=str(trained_teacher), text=["a fine film"]), data)
    assert listing(tmp_path) == {}


def test_a_student_whose_embedding_table_is_smaller_than_its_tokenizer(tiny_models, trained_teacher, sst2_slice,
                                                                       tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    student = tmp_path / "student-300-rows"
    BertModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(student)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["student_base"])
    tokenizer.save_pretrained(student)
    with pytest.raises(UserError, match=f"{len(tokenizer)} tokens but its embedding table only 300 rows"):
        distill(DistillConfig(teacher_model=str(trained_teacher), student_model=str(student)),
                DataConfig(data_path=str(sst2_slice)), TrainConfig(output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("head, phrase", [
    (3, "its head has 2 outputs (2 classes) but its config.json declares 3 (3 classes)"),
    (1, "its head has 1 output (a regression score) but its config.json declares 2 (2 classes)"),
])
def test_a_head_that_does_not_fit_its_config_is_not_called_corrupt(trained_teacher, tmp_path, head, phrase):
    """Whole weights under a config.json of another head size or task (3 labels declared over a 2-class
    head, or a regression head of one output under a 2-class config): the message says so, and does not
    send the user to copy files that are fine."""
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(trained_teacher, model)
    if head == 1:  # the weights of a regression head
        weights = load_file(str(model / "model.safetensors"))
        weights = {k: (v[:1].clone() if k.startswith("classifier.") else v) for k, v in weights.items()}
        save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    else:
        labels = [f"label{i}" for i in range(head)]
        config = json.loads((model / "config.json").read_text())
        config["id2label"], config["label2id"] = dict(enumerate(labels)), {n: i for i, n in enumerate(labels)}
        (model / "config.json").write_text(json.dumps(config))
    result = run_script("evaluate.py", "--model", model, "--text", "a gorgeous, witty film")
    assert_clean_failure(result, f"--model {model}: {phrase}", "the weights are whole")
    assert "corrupt" not in result.stderr
