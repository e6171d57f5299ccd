"""The static-embedding student (--student_init static): model2vec distills one vector per token from a
sentence transformer (here the tiny student base, a BERT encoder of width 32); the student is their mean
over a text's tokens under a Linear -> ReLU -> Linear head. It is distilled, saved, scored and exported
like any other student, and the flags that cannot apply to it are refused before anything is written."""

import json
import os

import numpy as np
import pytest
from helpers import (
    FP32,
    QUICK,
    assert_clean_failure,
    dev_texts,
    evaluate_model,
    read_tsv,
    run_script,
)
from safetensors.numpy import load_file

HEAD = 8


@pytest.fixture(scope="module")
def static_student(tmp_path_factory, sst2_slice, trained_teacher, tiny_models):
    """distilled-bert.py's static student of the tiny student base, with augmented copies and the precision
    auto picks (bf16 in the suite's bf16 pass)."""
    out = tmp_path_factory.mktemp("static-run")
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--student_init", "static",
                        "--static_head_size", HEAD, "--augment", "1", "--output_dir", out, *QUICK)
    assert result.returncode == 0, result
    return out / "student"


def numpy_logits(folder, texts: list[str]) -> np.ndarray:
    """The saved weights read as arrays: each text's mean embedding row over its token ids, then the head."""
    from transformers import AutoTokenizer

    tokenizer, w = AutoTokenizer.from_pretrained(str(folder)), load_file(str(folder / "model.safetensors"))
    pooled = np.stack([w["embeddings.weight"][tokenizer(text)["input_ids"]].mean(axis=0) for text in texts])
    hidden = np.maximum(pooled @ w["head.0.weight"].T + w["head.0.bias"], 0)
    return hidden @ w["head.2.weight"].T + w["head.2.bias"]


def gold(sst2_slice) -> np.ndarray:
    return np.array([int(r[1]) for r in read_tsv(sst2_slice / "dev.tsv")[1:]])


@pytest.mark.precision
def test_static_student_is_a_mean_of_token_vectors_under_a_head(static_student, sst2_slice, tiny_models):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kd_bert.models.students import static_embeddings

    config = json.loads((static_student / "config.json").read_text())
    assert config["model_type"] == "kd-static" and (static_student / "custom_models.py").is_file()
    # --static_pca_dims 256 by default, capped at the tiny sentence transformer's width of 32.
    assert config["embedding_dim"] == 32 and config["head_size"] == HEAD
    metrics = json.loads((static_student / "metrics.json").read_text())
    assert metrics["augmented_examples"] > 0 and {"train_kd_loss", "train_ce_loss"} <= set(metrics["history"][0])

    # Plain transformers, with the model code saved in the folder: padded batches give each text's own logits.
    model = AutoModelForSequenceClassification.from_pretrained(static_student, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(static_student)
    texts = dev_texts(sst2_slice)[:24]
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(logits, numpy_logits(static_student, texts), rtol=1e-4, atol=1e-5)

    # The tokenizer is model2vec's (no [CLS] or [SEP]), and the embeddings trained from model2vec's table.
    assert tokenizer("a gorgeous film")["input_ids"] == tokenizer.convert_tokens_to_ids(tokenizer.tokenize("a gorgeous film"))
    start, _ = static_embeddings(str(tiny_models["student_base"]), 256)
    trained = load_file(str(static_student / "model.safetensors"))["embeddings.weight"]
    assert start.shape == trained.shape == (len(tokenizer), 32)
    used = sorted({i for text in dev_texts(sst2_slice) for i in tokenizer(text)["input_ids"]})
    assert not np.allclose(trained[used], start[used])
    assert np.corrcoef(trained.ravel(), start.ravel())[0, 1] > 0.5  # moved from model2vec's table, not replaced


@pytest.mark.precision
def test_evaluate_scores_the_static_student(static_student, sst2_slice, tmp_path):
    scored = evaluate_model(static_student, sst2_slice, tmp_path, *FP32)
    predicted = numpy_logits(static_student, dev_texts(sst2_slice)).argmax(-1)
    assert scored["accuracy"] == pytest.approx(float(np.mean(predicted == gold(sst2_slice))))


@pytest.mark.precision
def test_static_student_exports_to_onnx_and_int8(static_student, sst2_slice, tmp_path):
    pytest.importorskip("onnxruntime")
    fp32, int8, out = tmp_path / "fp32", tmp_path / "int8", tmp_path / "metrics.json"
    result = run_script("evaluate.py", "--model", static_student, "--data_path", sst2_slice, "--export_onnx", fp32,
                        "--quantize", "onnx-int8", "--save_quantized", int8, "--output", out, "--latency_samples", "0",
                        *FP32)
    assert result.returncode == 0, result
    check = json.loads(out.read_text())["onnx"]
    assert check["max_abs_logit_diff"] < 1e-4 and check["agreement_with_fp32"] == 1.0
    scored = evaluate_model(fp32, sst2_slice, tmp_path, *FP32)  # the ONNX folder, scored as a model
    predicted = numpy_logits(static_student, dev_texts(sst2_slice)).argmax(-1)
    assert scored["accuracy"] == pytest.approx(float(np.mean(predicted == gold(sst2_slice))))
    assert (int8 / "model.onnx").stat().st_size < (fp32 / "model.onnx").stat().st_size


@pytest.mark.parametrize("flags,phrase", [
    (["--student_layers", "1"], "static-embedding student has none"),
    (["--hidden_weight", "1"], "static-embedding student has no hidden states"),
    (["--head", "mean_pool"], "a static student has its own"),
])
def test_flags_a_static_student_cannot_take(flags, phrase, sst2_slice, trained_teacher, tiny_models, tmp_path):
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--student_init", "static",
                        "--output_dir", out, *flags)
    assert_clean_failure(result, phrase)
    assert not out.exists()


def test_without_model2vec_one_line_says_how_to_install_it(sst2_slice, trained_teacher, tiny_models, tmp_path):
    # A model2vec that cannot be imported, first on the path: as on a machine without it.
    shadow = tmp_path / "shadow" / "model2vec"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'model2vec'\", name='model2vec')\n")
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--student_init", "static",
                        "--output_dir", out, *QUICK, env={"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))})
    assert_clean_failure(result, "--student_init static needs model2vec",
                         "pip install --no-deps model2vec==0.10.0 skeletoken==0.6.1")
    assert not out.exists()
