"""ONNX Runtime: evaluate.py --export_onnx writes a folder onnxruntime runs with dynamic batch and sequence
axes and the same logits as transformers; evaluate.py --model scores that folder like any other; --quantize
onnx-int8 writes a smaller model with int8 weights; without onnxruntime, a one-line error says what to install."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from helpers import BF16_BY_AUTO, assert_clean_failure, read_tsv, run_script

ort = pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (pip install onnxruntime onnx)")
onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install onnxruntime onnx)")

MAX_LENGTH = 64
pytestmark = pytest.mark.precision  # exports and agreement checks, whatever precision auto picks


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
    from kd_bert import DataConfig, EvalConfig, UserError, evaluate

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(UserError) as error:
        evaluate(EvalConfig(model=str(trained_teacher), export_onnx=str(tmp_path / "onnx")),
                 DataConfig(data_path=str(sst2_slice)))
    message = str(error.value)
    assert "pip install onnxruntime onnx" in message and "\n" not in message
    assert not (tmp_path / "onnx").exists()


def bf16_tensors(graph) -> list[str]:
    """The graph's bf16 weights and casts to bf16: what an export traced under bf16 autocast holds."""
    bf16 = onnx.TensorProto.BFLOAT16
    return [t.name for t in graph.initializer if t.data_type == bf16] + [
        node.name for node in graph.node
        if node.op_type == "Cast" and any(a.name == "to" and a.i == bf16 for a in node.attribute)]


@pytest.mark.parametrize("export", [False, True], ids=["int8", "int8-and-fp32"])
def test_the_readme_deploy_command_where_auto_picks_bf16(export, trained_teacher, sst2_slice, tmp_path):
    """The README's deploy command at the default precision on a machine where auto picks bf16: the
    PyTorch model scores in bf16, the export is fp32 all the same, the int8 folder loads in onnxruntime
    and scores, and each check says which two precisions it compares."""
    fp32, int8, out = tmp_path / "fp32", tmp_path / "int8", tmp_path / "metrics.json"
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--quantize", "onnx-int8",
                        "--save_quantized", int8, *(["--export_onnx", fp32] if export else []), "--output", out,
                        "--latency_samples", "0", "--max_length", MAX_LENGTH, env=BF16_BY_AUTO)
    assert result.returncode == 0, result
    metrics = json.loads(out.read_text())
    assert metrics["mixed_precision"] == "bf16" and metrics["computed_in"] == "pytorch bf16"
    assert metrics["mixed_precision_reason"] == "auto: KD_BERT_AUTO_PRECISION=bf16"
    quantized = metrics["quantized"]
    assert quantized["computed_in"] == "onnxruntime int8" and quantized["compared_with"] == "pytorch bf16"
    assert f"ONNX Runtime int8 vs PyTorch bf16: predictions agree on {quantized['agreement_with_fp32']:.2%}" \
        in result.stdout
    texts = ["a gorgeous , witty film", "dull", "an utterly " + "remarkable " * 20 + "movie"]
    session = ort.InferenceSession(str(int8 / "model.onnx"), providers=["CPUExecutionProvider"])
    assert not bf16_tensors(onnx.load(str(int8 / "model.onnx")).graph)
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(str(int8))(texts, padding=True, truncation=True, max_length=MAX_LENGTH,
                                                       return_tensors="np")
    logits = session.run(["logits"], {i.name: encoded[i.name] for i in session.get_inputs()})[0]
    assert logits.shape == (3, 2) and np.isfinite(logits).all()
    if export:
        check = metrics["onnx"]
        assert check["computed_in"] == "onnxruntime fp32" and check["compared_with"] == "pytorch bf16"
        assert "ONNX Runtime fp32 vs PyTorch bf16: predictions agree on" in result.stdout
        assert not bf16_tensors(onnx.load(str(fp32 / "model.onnx")).graph)
        session = ort.InferenceSession(str(fp32 / "model.onnx"), providers=["CPUExecutionProvider"])
        # fp32 like the weights: the bf16 autocast the model was scored under left no trace in the graph.
        np.testing.assert_allclose(session.run(["logits"], {i.name: encoded[i.name] for i in session.get_inputs()})[0],
                                   torch_logits(trained_teacher, texts), atol=1e-4)
    scored = tmp_path / "scored.json"  # the saved int8 folder scores, and says it ran in int8
    result = run_script("evaluate.py", "--model", int8, "--data_path", sst2_slice, "--output", scored,
                        "--latency_samples", "0", "--max_length", MAX_LENGTH, env=BF16_BY_AUTO)
    assert result.returncode == 0, result
    scored = json.loads(scored.read_text())
    assert scored["computed_in"] == "onnxruntime int8" and scored["mixed_precision"] == "no"
    assert "int8 graph as saved" in scored["mixed_precision_reason"]
    assert scored["accuracy"] == pytest.approx(quantized["accuracy"])


def _bf16_matmul_graph(path) -> None:
    """A graph onnxruntime's CPU provider has no kernel for: a MatMul in bf16."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((4, 2), dtype=np.float32), "w")
    nodes = [helper.make_node("Cast", ["input_ids"], ["x"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["w"], ["w16"], to=TensorProto.BFLOAT16),
             helper.make_node("MatMul", ["x", "w16"], ["y"]),
             helper.make_node("Cast", ["y"], ["logits"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "bf16", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("damage, named", [
    (lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]), "INVALID_PROTOBUF"),
    (_bf16_matmul_graph, "NOT_IMPLEMENTED"),
], ids=["truncated", "bf16-matmul"])
def test_a_graph_onnxruntime_refuses_is_a_one_line_error(damage, named, exported, sst2_slice, tmp_path):
    folder = tmp_path / "onnx"
    shutil.copytree(exported["fp32"], folder)
    damage(folder / "model.onnx")
    result = run_script("evaluate.py", "--model", folder, "--data_path", sst2_slice, "--latency_samples", "0",
                        "--output", tmp_path / "m.json")
    assert_clean_failure(result, "ONNX Runtime cannot run", named, "--export_onnx")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("inner, outer", [("--export_onnx", "--save_quantized"), ("--save_quantized", "--export_onnx")])
def test_one_export_folder_inside_the_other_is_refused(inner, outer, trained_teacher, sst2_slice, tmp_path):
    folders = {outer: tmp_path / "outer", inner: tmp_path / "outer" / "inner"}
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--quantize",
                        "onnx-int8", *(str(v) for item in folders.items() for v in item))
    assert_clean_failure(result, f"{inner} {folders[inner]} is inside {outer} {folders[outer]}")
    assert not (tmp_path / "outer").exists()


@pytest.mark.parametrize("flags, named", [
    (["--hidden_weight", "1"], "--hidden_weight 1 needs its hidden states"),
    (["--attention_weight", "0.5"], "--attention_weight 0.5 needs its attention maps"),
    (["--student_init", "teacher_layers"], "--student_init teacher_layers copies its layers"),
    (["--augment", "1", "--augment_replace", "0.3"], "--augment_replace 0.3 needs its word-embedding table"),
], ids=["hidden", "attention", "teacher-layers", "augment-replace"])
def test_an_onnx_teacher_is_refused_up_front_where_a_flag_needs_more_than_its_logits(flags, named, exported,
                                                                                    tiny_models, tmp_path):
    """Such a run once failed with a TypeError at its first step. Refused before the data is read: the
    data path here does not even exist."""
    out = tmp_path / "out"
    result = run_script("distilled-bert.py", "--teacher_model", exported["fp32"], "--student_model",
                        tiny_models["student_base"], "--data_path", tmp_path / "no-such-data", "--output_dir", out,
                        *flags)
    assert_clean_failure(result, f"--teacher_model {exported['fp32']} is an ONNX model, which gives logits only", named,
                         "use the PyTorch teacher it was exported from", output_dir=out)


def test_an_onnx_teacher_for_logits_only_is_accepted(exported):
    from kd_bert import DistillConfig

    for settings in ({}, {"teacher_logits": "online"}, {"hidden_weight": 1.0, "stage": "prediction"}):
        assert DistillConfig(teacher_model=str(exported["fp32"]), **settings).teacher_model == str(exported["fp32"])
