"""Student construction, without training: the layers kept from the teacher and copied from it; and a
student whose labels differ from its teacher's is refused."""

import json

import pytest
import torch
from helpers import run_script

from kd_bert.errors import UserError
from kd_bert.models.students import from_teacher_layers, parse_layers, spread_layers


def test_spread_layers_keeps_first_and_last():
    assert spread_layers(6, 12) == [0, 2, 4, 7, 9, 11]  # DistilBERT's pick from BERT-base
    assert spread_layers(12, 24) == [0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23]
    assert spread_layers(3, 6) == [0, 2, 5]
    assert spread_layers(1, 6) == [5]


def test_parse_layers():
    assert parse_layers("0,2,4", 6) == [0, 2, 4]
    assert parse_layers("3", 6) == [0, 2, 5]
    for bad in ("7", "0", "4,2", "0,6", "a,b"):
        with pytest.raises(UserError):
            parse_layers(bad, 6)


def _tiny_bert(layers=4):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def test_student_from_teacher_layers_copies_those_layers():
    teacher = _tiny_bert(4)
    student = from_teacher_layers(teacher, [1, 3]).eval()
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    for new, old in ((0, 1), (1, 3)):
        for a, b in zip(student.bert.encoder.layer[new].parameters(), teacher.bert.encoder.layer[old].parameters()):
            assert torch.equal(a, b)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    # Keeping every layer gives the teacher back, output for output.
    ids = torch.tensor([[2, 5, 7, 3]])
    same = from_teacher_layers(teacher, [0, 1, 2, 3]).eval()
    assert torch.allclose(same(input_ids=ids).logits, teacher(input_ids=ids).logits)


def test_student_whose_labels_differ_from_the_teachers(sst2_slice, trained_teacher, tmp_path):
    import shutil

    flipped = tmp_path / "flipped-student"
    shutil.copytree(trained_teacher, flipped)
    config = json.loads((flipped / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "positive", "1": "negative"}, {"positive": 0, "negative": 1}
    (flipped / "config.json").write_text(json.dumps(config))
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", flipped, "--output_dir", tmp_path / "out")
    assert result.returncode == 2 and "label maps differ" in result.stderr, result
    assert "{0: negative, 1: positive}" in result.stderr and "{0: positive, 1: negative}" in result.stderr
    assert not (tmp_path / "out").exists()
