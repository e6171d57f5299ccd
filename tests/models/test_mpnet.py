"""MPNet wherever a BERT works: as teacher and student, cut to some of its layers, under a mean-pooling
head, scored by evaluate.py and exported to ONNX and int8; a student with another tokenizer distills
from it on logit terms, and intermediate terms across the two tokenizers are refused. Tiny MPNets
(2 layers x 32, their own WordPiece vocabulary) built here stand in for all-mpnet-base-v2."""

from __future__ import annotations

import json

import pytest
from helpers import FP32, assert_clean_failure, independent_predictions, load_plain, read_tsv, run_script

COMMON = ["--max_length", "64", "--batch_size", "16", "--learning_rate", "1e-3", *FP32]


@pytest.fixture(scope="module")
def mpnet_teacher(tmp_path_factory, sst2_slice, tiny_mpnet):
    out = tmp_path_factory.mktemp("mpnet-teacher")
    result = run_script("trainer_teacher.py", "--model_name_or_path", tiny_mpnet, "--data_path", sst2_slice,
                        "--output_dir", out, "--num_train_epochs", "2", *COMMON)
    assert result.returncode == 0, result
    return out / "teacher"


def dev_texts_and_labels(sst2_slice):
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def test_an_mpnet_teacher_loads_with_plain_transformers_and_scores_what_it_predicts(mpnet_teacher, sst2_slice):
    model, tokenizer = load_plain(mpnet_teacher)
    assert model.config.model_type == "mpnet" and type(tokenizer).__name__.startswith("MPNetTokenizer")
    texts, labels = dev_texts_and_labels(sst2_slice)
    predicted = independent_predictions(mpnet_teacher, texts)
    recorded = json.loads((mpnet_teacher / "metrics.json").read_text())["validation"]["accuracy"]
    assert recorded == pytest.approx(sum(p == y for p, y in zip(predicted, labels)) / len(labels))


@pytest.mark.parametrize("student", [
    pytest.param(["--student_init", "teacher_layers", "--student_layers", "1"], id="teacher_layers"),
    pytest.param(["--student_init", "first_layers", "--student_layers", "1", "--hidden_weight", "1",
                  "--attention_weight", "1"], id="first_layers_with_intermediate_terms"),
    pytest.param(["--head", "mean_pool"], id="mean_pool"),
])
def test_mpnet_students(student, mpnet_teacher, tiny_mpnet, sst2_slice, tmp_path):
    result = run_script("distilled-bert.py", "--teacher_model", mpnet_teacher, "--student_model", tiny_mpnet,
                        *student, "--data_path", sst2_slice, "--output_dir", tmp_path, "--num_train_epochs", "1",
                        *COMMON)
    assert result.returncode == 0, result
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    if "--head" in student:  # the project's mean-pooling class around an MPNet encoder
        assert config["encoder_settings"]["model_type"] == "mpnet"
        return
    assert config["model_type"] == "mpnet" and config["num_hidden_layers"] == 1
    texts, labels = dev_texts_and_labels(sst2_slice)
    predicted = independent_predictions(tmp_path / "student", texts)
    recorded = json.loads((tmp_path / "student" / "metrics.json").read_text())["validation"]["accuracy"]
    assert recorded == pytest.approx(sum(p == y for p, y in zip(predicted, labels)) / len(labels))


def test_a_bert_student_with_its_own_tokenizer_distills_on_logits_only(mpnet_teacher, tiny_models, sst2_slice,
                                                                       tmp_path):
    args = ["--teacher_model", mpnet_teacher, "--student_model", tiny_models["student_own_vocab"],
            "--data_path", sst2_slice, "--num_train_epochs", "1", *COMMON]
    refused = run_script("distilled-bert.py", *args, "--hidden_weight", "1", "--output_dir", tmp_path / "hidden")
    assert_clean_failure(refused, "both need the same tokenizer", output_dir=tmp_path / "hidden")
    logits = run_script("distilled-bert.py", *args, "--output_dir", tmp_path / "logits")
    assert logits.returncode == 0, logits
    assert load_plain(tmp_path / "logits" / "student")[0].config.model_type == "bert"


def test_an_mpnet_model_exports_to_onnx_and_int8(mpnet_teacher, sst2_slice, tmp_path):
    result = run_script("evaluate.py", "--model", mpnet_teacher, "--data_path", sst2_slice, "--max_length", "64",
                        "--latency_samples", "0", "--export_onnx", tmp_path / "onnx", "--quantize", "onnx-int8",
                        "--save_quantized", tmp_path / "int8", "--output", tmp_path / "eval.json", *FP32)
    assert result.returncode == 0, result
    scored = json.loads((tmp_path / "eval.json").read_text())
    onnx = run_script("evaluate.py", "--model", tmp_path / "onnx", "--data_path", sst2_slice, "--max_length", "64",
                      "--latency_samples", "0", "--output", tmp_path / "onnx.json")
    assert onnx.returncode == 0, onnx
    # The fp32 export predicts as the PyTorch model does on every dev sentence.
    assert json.loads((tmp_path / "onnx.json").read_text())["confusion_matrix"] == scored["confusion_matrix"]
    assert (tmp_path / "int8" / "model.onnx").is_file()
