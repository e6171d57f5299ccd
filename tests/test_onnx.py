"""ONNX Runtime: evaluate.py --export_onnx writes a folder onnxruntime runs with dynamic batch and sequence
axes and the same logits as transformers; evaluate.py --model scores that folder like any other; --quantize
onnx-int8 writes a smaller model with int8 weights; without onnxruntime, a one-line error says what to install."""

import json
import sys

import numpy as np
import pytest
import torch
from conftest import read_tsv, run_script

ort = pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (pip install onnxruntime onnx)")
onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install onnxruntime onnx)")

MAX_LENGTH = 64


@pytest.fixture(scope="module")
def exported(trained_teacher, sst2_slice, tmp_path_factory):
    """One run for the module: the trained teacher exported, checked and quantized to int8."""
    folder = tmp_path_factory.mktemp("onnx")
    fp32, int8, out = folder / "fp32", folder / "int8", folder / "metrics.json"
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--export_onnx", fp32,
                        "--quantize", "onnx-int8", "--save_quantized", int8, "--output", out, "--latency_samples", "5",
                        "--max_length", MAX_LENGTH, "--mixed_precision", "no")
    assert result.returncode == 0, result
    return {"fp32": fp32, "int8": int8, "metrics": json.loads(out.read_text()), "stdout": result.stdout}


def torch_logits(folder, texts: list[str]) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH,
                                 return_tensors="pt")).logits.numpy()


def test_export_runs_in_onnxruntime_with_dynamic_axes(exported, trained_teacher):
    from transformers import AutoTokenizer

    assert {"model.onnx", "config.json", "onnx.json", "tokenizer.json"} <= {p.name for p in exported["fp32"].iterdir()}
    session = ort.InferenceSession(str(exported["fp32"] / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(str(exported["fp32"]))
    # Batch sizes and lengths other than the export's example (2 x a few tokens): the axes are dynamic.
    batches = [["wonderful"], ["a dull , lifeless film that never finds its footing", "fine", "not bad at all"],
               ["an utterly " + "remarkable " * 30 + "movie"] * 5]
    for texts in batches:
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="np")
        feeds = {i.name: encoded[i.name] for i in session.get_inputs()}
        logits = session.run(["logits"], feeds)[0]
        assert logits.shape == (len(texts), 2)
        np.testing.assert_allclose(logits, torch_logits(trained_teacher, texts), atol=1e-4)
    onnx_check = exported["metrics"]["onnx"]
    assert onnx_check["max_abs_logit_diff"] < 1e-4 and onnx_check["agreement_with_fp32"] == 1.0
    assert "ONNX export written to" in exported["stdout"]


def test_evaluate_scores_the_onnx_folder_like_the_torch_model(exported, trained_teacher, sst2_slice, tmp_path):
    out = tmp_path / "m.json"
    result = run_script("evaluate.py", "--model", exported["fp32"], "--data_path", sst2_slice, "--output", out,
                        "--latency_samples", "3", "--max_length", MAX_LENGTH)
    assert result.returncode == 0, result
    metrics = json.loads(out.read_text())
    rows = read_tsv(sst2_slice / "dev.tsv")[1:]
    predictions = torch_logits(trained_teacher, [r[0] for r in rows]).argmax(-1)
    expected = float(np.mean(predictions == np.array([int(r[1]) for r in rows])))
    assert metrics["accuracy"] == pytest.approx(expected)
    assert metrics["accuracy"] == pytest.approx(exported["metrics"]["accuracy"])  # the torch model, same run
    assert metrics["latency_p50_ms"] > 0 and metrics["examples_per_second"] > 0 and metrics["num_parameters"] > 0


def test_onnx_int8_holds_int8_weights_and_is_smaller(exported, sst2_slice, tmp_path):
    graph = onnx.load(str(exported["int8"] / "model.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} & ops, ops
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)
    fp32_size = (exported["fp32"] / "model.onnx").stat().st_size
    assert (exported["int8"] / "model.onnx").stat().st_size < 0.6 * fp32_size
    quantized = exported["metrics"]["quantized"]
    assert quantized["method"] == "onnx-int8" and quantized["agreement_with_fp32"] >= 0.8
    assert quantized["size_on_disk_mb"] < exported["metrics"]["onnx"]["size_on_disk_mb"]
    out = tmp_path / "m.json"  # the saved folder scores as it scored when it was made
    result = run_script("evaluate.py", "--model", exported["int8"], "--data_path", sst2_slice, "--output", out,
                        "--latency_samples", "0", "--max_length", MAX_LENGTH)
    assert result.returncode == 0, result
    assert json.loads(out.read_text())["accuracy"] == pytest.approx(quantized["accuracy"])


def test_missing_onnxruntime_is_a_one_line_error(trained_teacher, sst2_slice, tmp_path, monkeypatch):
    from kd_common import DataConfig, EvalConfig, UserError, evaluate

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(UserError) as error:
        evaluate(EvalConfig(model=str(trained_teacher), export_onnx=str(tmp_path / "onnx")),
                 DataConfig(data_path=str(sst2_slice)))
    message = str(error.value)
    assert "pip install onnxruntime onnx" in message and "\n" not in message
    assert not (tmp_path / "onnx").exists()
