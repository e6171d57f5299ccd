"""Saving never leaves a half-written model where a good one was."""

import json

import pytest

from kd_bert import UserError
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
