"""Building the student: from a pretrained checkpoint (with the stock [CLS] head or a mean-pooling
head, see models.load_classifier), from a subset of the teacher's own layers (DistilBERT), as static
token embeddings distilled from a sentence transformer (model2vec), or as a fresh BiLSTM (Tang et al.)."""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..config import DistillConfig
from ..data.labels import check_label_names
from ..errors import UserError
from .custom_models import (
    BiLSTMConfig,
    BiLSTMForSequenceClassification,
    StaticEmbeddingConfig,
    StaticEmbeddingForSequenceClassification,
)
from .load import (
    label_maps,
    label_names_of,
    load_classifier,
    load_config,
    load_encoder,
    load_tokenizer,
)
from ..registries.student_kinds import StudentKind, kind_of

log = logging.getLogger(__name__)


def spread_layers(count: int, num_layers: int) -> list[int]:
    """`count` of the teacher's layer indices (0-based), spread evenly and always keeping the first
    and the last: 12 -> 6 gives 0,2,4,7,9,11 (DistilBERT's choice), 24 -> 12 gives a bert-base depth."""
    if count == 1:
        return [num_layers - 1]
    return [round(i * (num_layers - 1) / (count - 1)) for i in range(count)]


def parse_layers(spec: str, num_layers: int, whose: str = "the teacher") -> list[int]:
    """--student_layers: a count ("6") spread evenly, or 0-based teacher layer indices ("0,2,4")."""
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--student_layers {spec!r}: give a layer count (6) or 0-based layer indices (0,2,4)") from None
    if "," not in spec:
        count = values[0] if values else 0
        if not 1 <= count <= num_layers:
            raise UserError(f"--student_layers {spec}: {whose} has {num_layers} layers; keep 1 to {num_layers}")
        return spread_layers(count, num_layers)
    if not values or sorted(set(values)) != values or values[0] < 0 or values[-1] >= num_layers:
        raise UserError(f"--student_layers {spec}: indices must be increasing, distinct and within 0..{num_layers - 1} "
                        f"({whose} has {num_layers} layers)")
    return values


def parse_first_layers(spec: str, num_layers: int, whose: str) -> list[int]:
    """--student_layers of a first_layers student: a count only."""
    if "," in spec:
        raise UserError(f"--student_layers {spec}: --student_init first_layers keeps the first layers, so give their "
                        f"count (3); for chosen layers of the teacher use --student_init teacher_layers")
    return parse_layers(spec, num_layers, whose)


def num_layers_of(config) -> int:
    settings = getattr(config, "encoder_settings", None)  # a mean-pooling classifier's encoder
    if isinstance(settings, dict) and "num_hidden_layers" in settings:
        return settings["num_hidden_layers"]
    return config.num_hidden_layers


def _layer_stack(model) -> tuple[str, nn.ModuleList]:
    """The ModuleList of the encoder's transformer layers (bert.encoder.layer, roberta.encoder.layer,
    distilbert.transformer.layer, ...): the one whose length is the config's layer count."""
    count = num_layers_of(model.config)
    stacks = [(name, module) for name, module in model.named_modules()
              if isinstance(module, nn.ModuleList) and len(module) == count]
    if len(stacks) != 1:
        raise UserError(f"cannot find the transformer layers of a {type(model).__name__}: --student_init teacher_layers "
                        f"works for BERT-family encoders")
    return stacks[0]


def _set_num_layers(config, count: int) -> None:
    if isinstance(getattr(config, "encoder_settings", None), dict):
        config.encoder_settings["num_hidden_layers"] = count
    config.num_hidden_layers = count  # DistilBERT maps this name to n_layers


def from_teacher_layers(teacher, indices: list[int]):
    """A copy of the teacher with only the transformer layers at `indices`: embeddings, those layers
    (in order), pooler and head are the teacher's weights. The result is the teacher's own class."""
    prefix, _ = _layer_stack(teacher)
    config = copy.deepcopy(teacher.config)
    _set_num_layers(config, len(indices))
    student = type(teacher)(config)
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith(prefix + "."):
            index, rest = key[len(prefix) + 1:].split(".", 1)
            if int(index) in indices:
                state[f"{prefix}.{indices.index(int(index))}.{rest}"] = value
        else:
            state[key] = value
    student.load_state_dict(state, strict=True)
    return student


def bilstm_classifier(tokenizer, label_names: list[str], embedding_dim: int, hidden_size: int, num_layers: int,
                      mlp_size: int):
    config = BiLSTMConfig(
        vocab_size=len(tokenizer), embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers,
        mlp_size=mlp_size, pad_token_id=tokenizer.pad_token_id or 0, **label_maps(label_names),
    )
    return BiLSTMForSequenceClassification(config)


def build_student(distill: DistillConfig, head: str, teacher, label_names: list[str], eager_attention: bool):
    """(student model, its tokenizer), freshly built by the build function of the kind asked for
    (student_kinds.py): call it again for an identical second start. `teacher` is the loaded Teacher
    (see jobs/distill.py), or None when the run never loads one."""
    kind = kind_of(distill)
    check_requirements(kind)
    build = build_function(kind)
    model, tokenizer = build(distill, head, teacher, label_names, eager_attention)
    log.debug(f"student built by {build.__name__}: {type(model).__name__}, "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
              f"{getattr(model.config, 'num_hidden_layers', '?')} layer(s) of width "
              f"{getattr(model.config, 'hidden_size', '?')}, {model.config.num_labels} output(s); tokenizer "
              f"{type(tokenizer).__name__} with {len(tokenizer)} entries")
    return model, tokenizer


def build_function(kind: StudentKind):
    """The build function of this module that a kind declares by name (student_kinds.py imports no torch, so
    it cannot hold the function itself); only a function defined here resolves."""
    function = globals().get(kind.build)
    if not (inspect.isfunction(function) and function.__module__ == __name__):
        raise LookupError(f"models/students.py defines no build function named {kind.build!r} (student kind "
                          f"{kind.name})")
    return function


def check_requirements(kind: StudentKind) -> None:
    """A kind whose build imports a package that requirements.txt does not install: that package, or the
    one-line error that says how to install it (checked when the run is planned, before anything loads)."""
    if not kind.requires:
        return
    package = kind.requires.split(".")[0]
    try:
        importlib.import_module(kind.requires)
    except ImportError as exc:
        what = package if exc.name in (None, package) else f"{package}'s dependency {exc.name}"
        raise UserError(f"--{kind.chosen_by} {kind.name} needs {what}, which is not installed; install it with: "
                        f"{kind.install}") from None


def pretrained_student(distill: DistillConfig, head: str, teacher, label_names: list[str], eager_attention: bool):
    """--student_model's checkpoint, with the stock [CLS] head or --head mean_pool sized for the labels."""
    check_student_labels(distill.student_model, label_names,
                         f"the teacher {distill.teacher_model}" if teacher is not None else "the data")
    tokenizer = load_tokenizer(distill.student_model, "--student_model")
    model = load_classifier(distill.student_model, "--student_model", label_names, head=head,
                            eager_attention=eager_attention)
    return model, tokenizer


def teacher_layers_student(distill: DistillConfig, head: str, teacher, label_names: list[str],
                           eager_attention: bool):
    """The teacher's embeddings, head and --student_layers of its layers (DistilBERT)."""
    total = num_layers_of(teacher.model.config)
    indices = parse_layers(distill.student_layers or str(max(1, total // 2)), total)
    log.info(f"student: the teacher's embeddings, head and layers {indices} of 0..{total - 1}")
    return from_teacher_layers(teacher.model, indices), teacher.tokenizer


def first_layers_student(distill: DistillConfig, head: str, teacher, label_names: list[str], eager_attention: bool):
    """--student_model cut to its first --student_layers transformer layers (default: half of them)."""
    model, tokenizer = pretrained_student(distill, head, teacher, label_names, eager_attention)
    total = num_layers_of(model.config)
    spec = distill.student_layers or str(max(1, total // 2))
    count = len(parse_first_layers(spec, total, distill.student_model))
    log.info(f"student: the first {count} of the {total} layers of {distill.student_model}")
    return from_teacher_layers(model, list(range(count))), tokenizer


def static_student(distill: DistillConfig, head: str, teacher, label_names: list[str], eager_attention: bool):
    """Static token embeddings distilled by model2vec from --student_model (a sentence transformer) and their
    tokenizer, mean-pooled under a new Linear -> ReLU -> Linear head; the embeddings are trained too."""
    table, tokenizer = static_embeddings(distill.student_model, distill.static_pca_dims)
    config = StaticEmbeddingConfig(vocab_size=table.shape[0], embedding_dim=table.shape[1],
                                   head_size=distill.static_head_size, pad_token_id=tokenizer.pad_token_id,
                                   **label_maps(label_names))
    model = StaticEmbeddingForSequenceClassification(config)
    with torch.no_grad():
        model.embeddings.weight.copy_(torch.from_numpy(table))
    log.info(f"student: static embeddings of {distill.student_model} (model2vec), {table.shape[0]} tokens of width "
             f"{table.shape[1]}, mean-pooled under a head of {distill.static_head_size}")
    return model, tokenizer


def static_embeddings(name_or_path: str, pca_dims: int):
    """(the (vocab, width) float32 table, its tokenizer as a transformers fast tokenizer) that model2vec
    distills from a sentence transformer: each token's output alone, reduced by PCA to pca_dims (at most
    the model's hidden size) and weighted by frequency rank (SIF). The tokenizer adds no special tokens,
    as model2vec's own encoding does, so a text's vector is the mean of its own tokens' rows."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    table, tokenizer_json, pad, unk = _distilled(name_or_path, pca_dims)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json), pad_token=pad,
                                        unk_token=unk, model_input_names=["input_ids", "attention_mask"])
    return table.copy(), tokenizer


@lru_cache(maxsize=2)  # --compare_no_kd builds the student twice, a sweep once per trial
def _distilled(name_or_path: str, pca_dims: int) -> tuple[np.ndarray, str, str, str | None]:
    from model2vec.distill import distill_from_model

    flag = "--student_model"
    encoder, source_tokenizer = load_encoder(name_or_path, flag), load_tokenizer(name_or_path, flag)
    width = encoder.config.hidden_size
    try:
        static = distill_from_model(encoder, source_tokenizer, pca_dims=min(pca_dims, width), quantize_to="float32")
    except Exception as exc:  # a tokenizer or model model2vec does not handle fails in many ways
        raise UserError(f"{flag} {name_or_path}: model2vec cannot distill static embeddings from it "
                        f"({type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}); "
                        f"use a sentence transformer such as sentence-transformers/all-MiniLM-L6-v2") from exc
    backend = static.tokenizer
    pad = (backend.padding or {}).get("pad_token") or source_tokenizer.pad_token
    unk = source_tokenizer.unk_token
    if pad is None or backend.token_to_id(pad) is None:
        raise UserError(f"{flag} {name_or_path}: its tokenizer has no padding token, which the static student's "
                        f"batches need; use a sentence transformer whose tokenizer has one")
    backend.no_padding()  # transformers pads and truncates each batch itself
    backend.no_truncation()
    table = np.asarray(static.embedding, dtype=np.float32)
    # One scale for the whole table, so that its rows average norm 1: the SIF weights leave the rows of
    # frequent tokens near 1e-3, which a single optimizer step of a usual size would overwrite.
    table = table / max(float(np.linalg.norm(table, axis=1).mean()), 1e-12)
    return table, backend.to_str(), pad, unk if unk is not None and backend.token_to_id(unk) is not None else None


def bilstm_student(distill: DistillConfig, head: str, teacher, label_names: list[str], eager_attention: bool):
    """A new BiLSTM (Tang et al.) on --student_tokenizer's vocabulary, or the teacher's."""
    # The BiLSTM's embedding table is made for this tokenizer, whatever model its folder holds.
    tokenizer = load_tokenizer(distill.student_tokenizer, "--student_tokenizer", with_model=False) \
        if distill.student_tokenizer else teacher.tokenizer
    model = bilstm_classifier(tokenizer, label_names, distill.bilstm_embedding_dim, distill.bilstm_hidden_size,
                              distill.bilstm_layers, distill.bilstm_mlp_size)
    return model, tokenizer


def check_student_labels(student: str, label_names: list[str], declared_by: str) -> None:
    """A student that is already a classifier (a TinyBERT stage-1 student, a model fine-tuned
    before) keeps its head only if its labels are the teacher's, in the same order: a head trained
    for another order would be trained against the teacher's swapped classes without any error."""
    config = load_config(student, "--student_model")
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
    if is_classifier:
        check_label_names(label_names, label_names_of(config), f"the student {student}", declared_by=declared_by)
