"""Loading classifiers and tokenizers, and saving them so plain transformers loads them back."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from ..config import ONNX_INT8
from ..deploy.onnx import OnnxClassifier, is_onnx_folder
from ..errors import UserError
from ..safety.atomic import (
    save_folder_atomically,
    write_atomically,
    write_json,
    write_text_atomically,
)
from ..task import Task

# Importing custom_models registers this project's model types with AutoConfig and
# AutoModelForSequenceClassification, so that their saved folders load like any other.
from .custom_models import KD_MEAN_POOL, MeanPoolForSequenceClassification
from .hub import resolve_model

TORCH_INT8_MARKER = "quantization.json"  # folders the removed --quantize dynamic-int8 wrote
# Models whose position ids start after the padding id (RoBERTa's create_position_ids_from_input_ids),
# so pad_token_id + 1 rows of their position table are never a position.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod")


def load_tokenizer(name_or_path: str, flag: str, with_model: bool = True):
    """The tokenizer of a model folder or hub id. with_model: the folder's model reads its ids, so its
    embedding table must have a row for every id the tokenizer gives (checked here, before training:
    a missing row is an IndexError mid-run on a CPU and an opaque device-side assert on a GPU)."""
    source, local_only = resolve_model(name_or_path, flag)
    problem = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    except Exception as exc:
        problem = _first_line(exc)
    else:
        # Without tokenizer.json and vocab.txt, transformers builds a tokenizer from tokenizer_config.json
        # alone that knows only its special tokens and maps every word to [UNK], without a warning.
        if len(tokenizer.get_vocab()) <= len(set(tokenizer.all_special_tokens)):
            problem = f"it has no vocabulary, only its {len(tokenizer.get_vocab())} special tokens"
    if problem:
        raise UserError(
            f"{flag} {name_or_path}: cannot load its tokenizer ({problem}); the folder needs the "
            f"tokenizer files save_pretrained writes (tokenizer.json or vocab.txt)"
        )
    if with_model:  # the config from where the tokenizer came, without asking the hub again
        rows = _setting(_config(source, local_only, flag, name_or_path), "vocab_size")
        if rows is not None and len(tokenizer) > rows:
            raise UserError(f"{flag} {name_or_path}: its tokenizer has {len(tokenizer)} tokens but its embedding table "
                            f"only {rows} rows, so ids from {rows} up would fail mid-run; use the tokenizer the model "
                            f"was trained with, or resize the table (model.resize_token_embeddings(len(tokenizer))) "
                            f"and save the model again")
    return tokenizer


def position_limit(config) -> int | None:
    """The most tokens a model takes: the rows of its position table that are positions; None for a
    model with no such table (a BiLSTM, or relative positions only)."""
    rows = _setting(config, "max_position_embeddings")
    if rows is None or _setting(config, "position_biased_input") is False:
        return None
    model_type = _setting(config, "model_type") or ""
    if model_type in OFFSET_POSITIONS:
        rows -= (_setting(config, "pad_token_id") or 0) + 1
    return rows


def check_max_length(max_length: int, sources: list[tuple[str, str]]) -> None:
    """--max_length against each model's positions, from its config alone (before any weights load): a
    longer input is a RuntimeError at the first long text, hours into a run."""
    for source, flag in sources:
        limit = position_limit(load_config(source, flag))
        if limit is not None and max_length > limit:
            raise UserError(f"--max_length {max_length} is more than {flag} {source} takes ({limit} positions); "
                            f"use --max_length {limit} or less")


def _setting(config, name: str):
    """A config value, looked up in a mean-pooling classifier's encoder settings too."""
    settings = getattr(config, "encoder_settings", None)
    if isinstance(settings, dict) and name in settings:
        return settings[name]
    return getattr(config, name, None)


def load_config(name_or_path: str, flag: str):
    return _config(*resolve_model(name_or_path, flag), flag, name_or_path)


def _config(source: str, local_only: bool, flag: str, name_or_path: str):
    """The config of a source resolve_model has found."""
    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    except Exception as exc:
        raise UserError(f"{flag} {name_or_path}: cannot read its config.json ({_first_line(exc)}); re-save the model") from exc


def load_classifier(name_or_path: str, flag: str, label_names: list[str] | None = None, head: str = "cls",
                    eager_attention: bool = False):
    """A sequence classifier. With label_names, the head is sized for them and the label maps are set
    (a new head when the checkpoint has none or another size); without, the checkpoint's own head.
    head "mean_pool" puts a new mean-pooling head on a pretrained encoder (a checkpoint that already
    has one keeps it). eager_attention: attention maps come back (SDPA returns none)."""
    source, local_only = resolve_model(name_or_path, flag)
    if local_only and (Path(source) / TORCH_INT8_MARKER).is_file():
        raise UserError(f"{flag} {name_or_path} was written by --quantize dynamic-int8, which is gone; make an int8 "
                        f"model from the fp32 one with evaluate.py --quantize {ONNX_INT8} --save_quantized DIR")
    if local_only and is_onnx_folder(source):
        if label_names is not None:
            raise UserError(f"{flag} {name_or_path} is an ONNX model for inference; it cannot be trained. "
                            f"Train from the PyTorch model it was exported from")
        return OnnxClassifier(source)
    if head == "mean_pool" and label_names is not None and load_config(name_or_path, flag).model_type != KD_MEAN_POOL:
        encoder = _from_pretrained(AutoModel, source, local_only, flag, name_or_path, {})
        try:
            model = MeanPoolForSequenceClassification.from_encoder(encoder, **label_maps(label_names))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        return use_attention(model, eager_attention)
    kwargs = {} if label_names is None else {**label_maps(label_names), "ignore_mismatched_sizes": True}
    model = _from_pretrained(AutoModelForSequenceClassification, source, local_only, flag, name_or_path, kwargs)
    # Saved with the model, so that plain transformers computes the matching loss from it too.
    model.config.problem_type = Task.of(label_names_of(model.config)).problem_type
    return use_attention(model, eager_attention)


def load_encoder(name_or_path: str, flag: str):
    """A checkpoint's encoder without any head (AutoModel), as a sentence transformer's folder holds it."""
    source, local_only = resolve_model(name_or_path, flag)
    return _from_pretrained(AutoModel, source, local_only, flag, name_or_path, {})


def use_attention(model, eager: bool):
    """eager: every transformer inside `model` computes attention explicitly and can return its maps."""
    if eager:
        for module in model.modules():
            if isinstance(module, PreTrainedModel):
                module.config._attn_implementation = "eager"
    return model


def _from_pretrained(auto_class, source: str, local_only: bool, flag: str, name_or_path: str, kwargs: dict):
    try:
        return auto_class.from_pretrained(source, local_files_only=local_only, trust_remote_code=False, **kwargs)
    except OSError as exc:
        raise UserError(
            f"{flag} {name_or_path}: cannot load model weights ({_first_line(exc)}); the folder needs "
            f"model.safetensors (or pytorch_model.bin) and config.json as save_pretrained writes them"
        ) from exc
    except Exception as exc:  # a truncated or corrupt weights file surfaces as many error types
        if "mismatch" in str(exc):  # whole files whose shapes are not the ones config.json describes
            raise UserError(_mismatch(source, flag, name_or_path, kwargs.get("num_labels"), exc)) from exc
        raise UserError(
            f"{flag} {name_or_path}: the model weights could not be read ({type(exc).__name__}: "
            f"{_first_line(exc)}); the files may be corrupt: save or copy the model again"
        ) from exc


def _mismatch(source: str, flag: str, name_or_path: str, needed: int | None, exc: Exception) -> str:
    """What a size mismatch means: most often a head of another size (another number of labels, or the
    other task: a regression head has one output) than config.json or this run asks for."""
    declared = needed or _setting(AutoConfig.from_pretrained(source, trust_remote_code=False), "num_labels")
    outputs = _head_outputs(Path(source))
    if outputs is not None and declared is not None and outputs != declared:
        wanted = "this run needs" if needed else "its config.json declares"
        return (f"{flag} {name_or_path}: its head has {outputs} output{'s' * (outputs != 1)} "
                f"({_task_of(outputs)}) but {wanted} {declared} ({_task_of(declared)}); the weights are whole, "
                f"but config.json and the weights are of different models: use the folder as save_pretrained wrote "
                f"it, or a model trained for this task")
    return (f"{flag} {name_or_path}: its weights have other shapes than its config.json describes "
            f"({_first_line(exc)}); config.json and the weights are of different models: use the folder as "
            f"save_pretrained wrote it")


def _task_of(outputs: int) -> str:
    return "a regression score" if outputs == 1 else f"{outputs} classes"


def _head_outputs(folder: Path) -> int | None:
    """The output size of the classification head in model.safetensors (the last classifier/head bias),
    read from the file's header only; None when it cannot be told."""
    import json
    import struct

    path = folder / "model.safetensors"
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return None
    biases = [name for name in header if name.endswith(".bias") and any(part in name for part in
                                                                          ("classifier", "head", "score"))]
    if not biases:
        return None
    shape = header[sorted(biases)[-1]].get("shape") or []
    return shape[0] if len(shape) == 1 else None


def label_maps(label_names: list[str]) -> dict:
    """The config entries that size a classification head and name its outputs; one name is a
    regression head (one output, a score), marked as such for transformers."""
    return Task.of(label_names).head_config()


def label_names_of(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def check_task(label_names: list[str], scores: bool, model: str, source: str, training: bool = True) -> None:
    """A regression model learns from and is scored against scores, a classifier against classes; `scores`
    tells which the data holds (data.has_scores). A model whose task does not accept them (Task.accepts,
    for training or for scoring) is refused."""
    task = Task.of(label_names)
    if task.accepts(scores, training):
        return
    held = "scores (numbers, not all whole: a regression task)" if scores \
        else "classes (names or whole numbers: a classification task)"
    fix = "a regression model trained on such scores (trainer_teacher.py on this data trains one)" if scores \
        else "a classifier trained on such classes"
    raise UserError(f"the labels of {source} are {held}, but {model} is {task.describe()}; use {fix}")


def count_parameters(model) -> int:
    if isinstance(model, OnnxClassifier):
        return model.num_weights
    return sum(p.numel() for p in model.parameters())


def size_on_disk(folder: str | Path) -> int:
    """Bytes of the weight files in a saved model folder."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".onnx"))


def save_model_atomically(model, tokenizer, out_dir: str | Path, sidecars: dict[str, object]) -> Path:
    """save_pretrained of model and tokenizer, plus sidecar files (a dict or list is written as JSON,
    a str as text, bytes as they are; a callable is called with the folder once the weights are in it,
    for content that describes them, and its result written so), all at once (see save_folder_atomically)."""

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        for name, content in sidecars.items():
            _write_sidecar(folder / name, content(folder) if callable(content) else content)

    return save_folder_atomically(out_dir, write)


def _write_sidecar(path: Path, content) -> None:
    if isinstance(content, bytes):
        write_atomically(path, content)
    elif isinstance(content, str):
        write_text_atomically(path, content)
    else:
        write_json(path, content)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
