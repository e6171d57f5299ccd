"""Where a model to train starts from: a pretrained checkpoint (with the stock [CLS] head or a
mean-pooling head), a subset of the teacher's own layers (DistilBERT), or a fresh BiLSTM (Tang et al.)."""

from __future__ import annotations

import copy

from torch import nn

from .errors import UserError

BILSTM = "bilstm"  # --student_model value that asks for a BiLSTM student


def spread_layers(count: int, num_layers: int) -> list[int]:
    """`count` of the teacher's layer indices (0-based), spread evenly and always keeping the first
    and the last: 12 -> 6 gives 0,2,4,7,9,11 (DistilBERT's choice), 24 -> 12 gives a bert-base depth."""
    if count == 1:
        return [num_layers - 1]
    return [round(i * (num_layers - 1) / (count - 1)) for i in range(count)]


def parse_layers(spec: str, num_layers: int) -> list[int]:
    """--student_layers: a count ("6") spread evenly, or 0-based teacher layer indices ("0,2,4")."""
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--student_layers {spec!r}: give a layer count (6) or 0-based layer indices (0,2,4)") from None
    if "," not in spec:
        count = values[0] if values else 0
        if not 1 <= count <= num_layers:
            raise UserError(f"--student_layers {spec}: the teacher has {num_layers} layers; keep 1 to {num_layers}")
        return spread_layers(count, num_layers)
    if not values or sorted(set(values)) != values or values[0] < 0 or values[-1] >= num_layers:
        raise UserError(f"--student_layers {spec}: indices must be increasing, distinct and within 0..{num_layers - 1} "
                        f"(the teacher has {num_layers} layers)")
    return values


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


def mean_pool_classifier(encoder, label_names: list[str], head_dropout: float = 0.1):
    """A pretrained encoder (AutoModel) under a new mean-pooling head sized for label_names."""
    from .custom_models import MeanPoolConfig, MeanPoolForSequenceClassification

    config = MeanPoolConfig(
        encoder_settings=encoder.config.to_dict(), head_dropout=head_dropout, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    model = MeanPoolForSequenceClassification(config)
    missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
    misfits = [k for k in missing + unexpected if "pooler" not in k]  # the [CLS] pooler is not used
    if misfits:
        raise UserError(f"the encoder's weights do not fit a mean-pooling classifier ({', '.join(misfits[:3])})")
    return model


def bilstm_classifier(tokenizer, label_names: list[str], embedding_dim: int, hidden_size: int, num_layers: int,
                      mlp_size: int):
    from .custom_models import BiLSTMConfig, BiLSTMForSequenceClassification

    config = BiLSTMConfig(
        vocab_size=len(tokenizer), embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers,
        mlp_size=mlp_size, pad_token_id=tokenizer.pad_token_id or 0, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )
    return BiLSTMForSequenceClassification(config)
