"""Serving a classifier through ONNX Runtime: exporting it to ONNX, an int8 version made with ONNX Runtime's
own quantization tools, and a folder form that load_classifier opens like any other model folder.

An ONNX folder holds model.onnx (dynamic batch and sequence axes), config.json, the tokenizer files and
onnx.json, which says what made it (fp32 export or int8) and marks the folder. An export is fp32 whatever
precision the run scores in: the model is exported without the autocast a bf16 or fp16 run wraps its
forward in (a graph traced under it holds bf16 MatMuls, which ONNX Runtime's CPU kernels do not implement).
The int8 version is the export after onnxruntime's transformer optimizer (fused attention and embedding
LayerNorm; skip LayerNorm and bias GELU stay unfused, their fused CPU kernels being the slower ones) and
dynamic quantization (int8 weights, activations quantized on the fly): the fused int8 kernels (QAttention,
MatMulInteger) are what make it fast.

onnxruntime and onnx are optional (pip install .[onnx]); they are imported only here, when asked for.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import extract_model_from_parallel
from torch import nn
from transformers import AutoConfig, AutoTokenizer
from transformers.modeling_outputs import SequenceClassifierOutput

from ..config import ONNX_FILE, ONNX_INT8
from ..errors import UserError

MARKER = "onnx.json"
INSTALL = "pip install onnxruntime onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
# One weight scale per tensor, not per output channel: on the 3-layer SST-2 student per-channel int8 scored about
# half a point lower on dev than per-tensor, with or without reduce_range (a one-off comparison whose files were
# not kept). The activations' scale is computed per batch either way.
PER_CHANNEL = False
# ONNX Runtime 1.32's fused SkipLayerNormalization CPU kernel is slow: on the SST-2 student at batch 64 its six
# nodes took about a quarter of the pass, several times what the same six took as Add + LayerNormalization (a
# one-off profile; benchmarks/onnx_speed_notes.md says more). So the transformer
# optimizer leaves skip LayerNorm (and bias GELU, whose fused kernel was also slower than the bias folded into the
# int8 MatMul plus a plain Gelu) unfused, and the session does not fuse Add + LayerNormalization back.
UNFUSED = {"enable_skip_layer_norm": False, "enable_bias_gelu": False}
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def require_onnxruntime():
    """onnxruntime, or the one-line error that says how to install it."""
    try:
        import onnx  # noqa: F401  (export and quantization write ONNX protos)
        import onnxruntime
    except ImportError as exc:
        raise UserError(f"ONNX export and --quantize {ONNX_INT8} need onnxruntime and onnx ({exc.name} is not "
                        f"installed): {INSTALL} (or pip install .[onnx])") from None
    return onnxruntime


def is_onnx_folder(folder: str | Path) -> bool:
    return (Path(folder) / ONNX_FILE).is_file()


def physical_cores() -> int:
    """Cores this process may use, counting each physical core once: two hyperthreads on one core share
    its vector units, so a second matmul thread there slows the first."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return usable
    cores, socket = set(), None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "physical id":
            socket = value.strip()
        elif name.strip() == "core id":
            cores.add((socket, value.strip()))
    return max(1, min(len(cores) or usable, usable))


def runtime_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exceptions for a graph it refuses to load or run (a truncated file, an operator or type
    it has no kernel for, inputs the graph does not take)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf", "InvalidGraph", "NotImplemented",
             "RuntimeException", "EPFail")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def refused(path: str | Path, exc: Exception) -> UserError:
    """ONNX Runtime's refusal as one line: its message's first line without the error number or the path
    again, cut short, and what to do."""
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    message = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", message).replace(str(path), "it")
    if len(message) > 160:
        message = message[:160] + "..."
    return UserError(f"ONNX Runtime cannot run {path}: {message}; export the PyTorch model again with "
                     f"evaluate.py --export_onnx (an export is fp32)")


def session(path: str | Path):
    """An ONNX Runtime CPU session tuned for this machine: one intra-op thread per physical core, operators
    run one after another (a classifier's graph is a chain; parallel operators only contend for cores),
    every graph optimization on except the skip-LayerNorm fusion (its fused kernel is the slower one)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Not "session.set_denormal_as_zero", although int8 was about 7% faster with it on the SST-2 student
    # (benchmarks/onnx_speed_notes.md): onnxruntime then also sets FTZ/DAZ on the thread that creates the
    # session, which silently changes every later numpy and torch computation in the user's process.
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=DISABLED_OPTIMIZERS)
    except runtime_errors() as exc:
        raise refused(path, exc) from None


def export(model, tokenizer, folder: Path, source: str) -> None:
    """Write model.onnx (fp32, dynamic batch and sequence axes), config, tokenizer and onnx.json into an
    empty folder."""
    require_onnxruntime()
    # Without the autocast-wrapped forward of a mixed-precision run (on the copy: the caller's model keeps it).
    model = extract_model_from_parallel(copy.deepcopy(model), keep_fp32_wrapper=False).float().cpu().eval()
    # Explicit attention traces to the MatMul/Softmax pattern onnxruntime's optimizer fuses into one
    # Attention node; SDPA traces to a graph it leaves unfused (about half the int8 speed).
    for module in model.modules():
        if hasattr(module, "config") and hasattr(module.config, "_attn_implementation"):
            module.config._attn_implementation = "eager"
    example = tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    names = [n for n in INPUT_NAMES if n in example]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    # The TorchScript-based exporter, not the default torch.export one: its graph is the one onnxruntime's
    # transformer optimizer recognizes (the torch.export graph gets no fused attention), and it needs no
    # onnxscript. It warns that it is deprecated; that warning is left to show.
    # autocast off as well, for a caller that exports inside an autocast region of its own.
    with warnings.catch_warnings(), torch.autocast("cpu", enabled=False):
        # The tracer flags shape checks inside transformers as traced constants; the axes stay dynamic,
        # which evaluate.py verifies on the whole split by comparing logits with PyTorch's.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, tuple(example[n] for n in names), str(folder / ONNX_FILE), input_names=names,
                          output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _write_marker(folder, {"precision": "fp32", "exported_from": source, "opset": OPSET})


def quantize(fp32_folder: Path, folder: Path) -> None:
    """Write the int8 version of an fp32 ONNX folder into an empty folder: the transformer optimizer's
    fusions first (when the model is one it knows), then dynamic int8 quantization of every MatMul."""
    ort = require_onnxruntime()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    config = AutoConfig.from_pretrained(fp32_folder, trust_remote_code=False)
    with tempfile.TemporaryDirectory() as tmp:
        fused, fusions = _optimize(fp32_folder / ONNX_FILE, config, Path(tmp) / "fused.onnx")
        # Fused nodes (onnxruntime's com.microsoft domain) have no shape inference in onnx, so the quantizer
        # is told that a tensor of unknown type is float.
        quantize_dynamic(fused, folder / ONNX_FILE, weight_type=QuantType.QInt8, per_channel=PER_CHANNEL,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(fp32_folder, trust_remote_code=False).save_pretrained(folder)
    _write_marker(folder, {"precision": "int8", "method": ONNX_INT8, "per_channel": PER_CHANNEL,
                           "fused": fusions, "unfused": sorted(UNFUSED), "onnxruntime": ort.__version__})


def _optimize(path: Path, config, out: Path) -> tuple[Path, dict[str, int]]:
    """The graph with attention and the embedding LayerNorm fused (skip LayerNorm and bias GELU left
    unfused: see UNFUSED), and the count of each fusion; the graph as it was
    (and no fusions) for a model the BERT optimizer does not handle."""
    heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    if not heads or not hidden:
        return path, {}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    for name, value in UNFUSED.items():
        setattr(options, name, value)
    try:
        optimized = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden,
                                   optimization_options=options)
    except Exception:  # an architecture the BERT fusions do not fit: quantize the graph unfused
        return path, {}
    optimized.save_model_to_file(str(out))
    return out, {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}


def _write_marker(folder: Path, content: dict) -> None:
    (folder / MARKER).write_text(json.dumps({"format": "onnx", **content}, indent=2) + "\n", encoding="utf-8")


def describe(folder: str | Path) -> dict:
    path = Path(folder) / MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def precision_of(folder: str | Path) -> str:
    """The precision an ONNX folder's graph computes in, as recorded when it was written: "fp32", "int8"."""
    return describe(folder).get("precision", "fp32")


def onnx_computed_in(folder: str | Path) -> str:
    """What computes an ONNX folder's logits, as evaluate.py records it: "onnxruntime int8"."""
    return f"onnxruntime {precision_of(folder)}"


class OnnxClassifier(nn.Module):
    """An ONNX folder behind a transformers classifier's interface: called with the tokenizer's tensors, it
    returns .logits as a torch tensor, so the scoring, latency and prediction code serve it unchanged. It has
    no torch parameters; num_weights counts the graph's initializer elements."""

    def __init__(self, folder: str | Path):
        super().__init__()
        import onnx

        folder = Path(folder)
        self.config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        self.path = folder / ONNX_FILE
        self.session = session(self.path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        graph = onnx.load(str(folder / ONNX_FILE), load_external_data=False).graph
        self.num_weights = int(sum(np.prod(t.dims, dtype=np.int64) for t in graph.initializer))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_) -> SequenceClassifierOutput:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        defaults = {"attention_mask": torch.ones_like, "token_type_ids": torch.zeros_like}
        feeds = {name: (given[name] if given[name] is not None else defaults[name](input_ids)).cpu().numpy()
                 for name in self.input_names}
        try:
            logits = self.session.run(["logits"], feeds)[0]  # (bs, num_labels)
        except runtime_errors() as exc:
            raise refused(self.path, exc) from None
        return SequenceClassifierOutput(logits=torch.from_numpy(logits).to(input_ids.device))
