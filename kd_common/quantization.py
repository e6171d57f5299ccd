"""Dynamic int8 quantization of a classifier's Linear layers, for CPU inference, and a folder form
that evaluate.py loads back.

Dynamic quantization stores each Linear weight as int8 with one scale per tensor and quantizes the
activations on the fly; embeddings, LayerNorm and LSTMs stay float32. PyTorch runs it on CPU only.
A quantized folder holds config.json, the tokenizer, the quantized state dict and quantization.json,
which marks the folder so load_classifier rebuilds the model from its config, quantizes it the same
way and loads the saved int8 weights.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

METHOD = "dynamic-int8"
MARKER = "quantization.json"
WEIGHTS = "quantized_model.pt"


def quantize(model) -> nn.Module:
    """An int8 copy of the model on the CPU; the model itself is left as it was."""
    from torch.ao.quantization import quantize_dynamic  # deprecated upstream: imported only when asked for

    with warnings.catch_warnings():  # eager-mode quantization warns that it is deprecated upstream
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


def is_quantized(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def write_quantized(model, tokenizer, folder: Path) -> None:
    """Write a quantized model (from quantize) into an empty folder."""
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.save(model.state_dict(), folder / WEIGHTS)
    marker = {"method": METHOD, "modules": ["Linear"], "torch": torch.__version__}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def load_quantized(folder: str | Path):
    folder = Path(folder)
    method = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("method")
    if method != METHOD:
        raise ValueError(f"{folder}: quantization method {method!r} is not {METHOD!r}")
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
    model = quantize(model)
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()
