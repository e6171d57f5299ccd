"""Three classifiers that are not stock transformers models: a BERT encoder with a mean-pooling head,
a BiLSTM (Tang et al., 2019) and static token embeddings under a small head (model2vec's). All are
ordinary PreTrainedModels with their own model_type, and regression models (one output, a score) when
num_labels is 1.

This file imports nothing from the project: save_pretrained copies it into every folder that holds
one of these models (as `custom_models.py`, named in config.json's auto_map), so plain transformers
loads the folder with `trust_remote_code=True`, and this project's scripts load it without that.
A folder with one of these models never loads silently as a stock BERT with a missing head: without
this file or trust_remote_code, transformers refuses the unknown model_type.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

KD_MEAN_POOL = "kd-mean-pool"  # model_type of the mean-pooling classifier


def _loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """The loss transformers' own classifiers compute when given labels: MSE for one output (a
    regression score, as Hugging Face reads num_labels == 1), cross-entropy over classes otherwise."""
    if num_labels == 1:
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float(), labels)


class MeanPoolConfig(PretrainedConfig):
    """A transformer encoder (its config kept as a dict in `encoder_settings`) and a two-layer head."""

    model_type = KD_MEAN_POOL

    def __init__(self, encoder_settings: dict | None = None, head_hidden_size: int | None = None,
                 head_dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.encoder_settings = dict(encoder_settings or {})
        self.head_hidden_size = head_hidden_size
        self.head_dropout = head_dropout
        # Mirrored from the encoder: what code that sizes projections or picks layers reads.
        self.hidden_size = self.encoder_settings.get("hidden_size")
        self.num_hidden_layers = self.encoder_settings.get("num_hidden_layers")

    def encoder_config(self) -> PretrainedConfig:
        settings = dict(self.encoder_settings)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class MeanPoolForSequenceClassification(PreTrainedModel):
    """Mean of the encoder's last hidden states over real tokens, then
    Dropout -> Linear -> GELU -> Dropout -> Linear, as in the banking-intent classifier."""

    config_class = MeanPoolConfig
    base_model_prefix = "encoder"
    _supports_sdpa = True

    def __init__(self, config: MeanPoolConfig):
        super().__init__(config)
        encoder_config = config.encoder_config()
        implementation = getattr(config, "_attn_implementation", None)
        if implementation == "sdpa" and not getattr(AutoModel._model_mapping[type(encoder_config)], "_supports_sdpa",
                                                     False):
            implementation = "eager"  # an encoder without SDPA attention (MPNet) computes it explicitly
        if implementation:
            encoder_config._attn_implementation = implementation
        self.encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False) \
            if encoder_config.model_type == "bert" else AutoModel.from_config(encoder_config)
        width = encoder_config.hidden_size
        middle = config.head_hidden_size or width
        self.head = nn.Sequential(
            nn.Dropout(config.head_dropout), nn.Linear(width, middle), nn.GELU(),
            nn.Dropout(config.head_dropout), nn.Linear(middle, config.num_labels),
        )
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear) and any(module is m for m in self.head.modules()):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_encoder(cls, encoder, head_dropout: float = 0.1, **labels):
        """A pretrained encoder (AutoModel) under a new mean-pooling head; `labels` are the config's
        num_labels, id2label and label2id. ValueError when the encoder's weights do not fit."""
        config = MeanPoolConfig(encoder_settings=encoder.config.to_dict(), head_dropout=head_dropout, **labels)
        model = cls(config)
        missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
        misfits = [k for k in missing + unexpected if "pooler" not in k]  # the [CLS] pooler is not used
        if misfits:
            raise ValueError(f"the encoder's weights do not fit a mean-pooling classifier ({', '.join(misfits[:3])})")
        return model

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, output_attentions=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                           output_attentions=output_attentions, return_dict=True, **extra)
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)  # (bs, seq, 1)
        pooled = (out.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (bs, hidden)
        logits = self.head(pooled)  # (bs, num_labels)
        loss = _loss(logits, labels, self.config.num_labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)


class BiLSTMConfig(PretrainedConfig):
    model_type = "kd-bilstm"

    def __init__(self, vocab_size: int = 30522, embedding_dim: int = 300, hidden_size: int = 300, num_layers: int = 1,
                 mlp_size: int = 400, dropout: float = 0.1, pad_token_id: int = 0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.mlp_size = mlp_size
        self.dropout = dropout


class _TokenTableClassifier(PreTrainedModel):
    """A classifier over a table of token vectors of its own (self.embeddings), not a transformer's: a new
    table is drawn from N(0, 0.1), its padding row zero."""

    main_input_name = "input_ids"

    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.1)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value


class BiLSTMForSequenceClassification(_TokenTableClassifier):
    """Tang et al. (2019): word embeddings -> bidirectional LSTM -> max-pool over time -> ReLU MLP."""

    config_class = BiLSTMConfig
    base_model_prefix = "bilstm"

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, num_layers=config.num_layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(2 * config.hidden_size, config.mlp_size), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.mlp_size, config.num_labels),
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lengths = attention_mask.sum(dim=1).clamp(min=1)  # (bs,)
        embedded = self.embeddings(input_ids)  # (bs, seq, emb)
        # Packed, so the backward direction starts at each sentence's last real token, not at padding.
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])  # (bs, seq, 2h)
        out = out.masked_fill(attention_mask.unsqueeze(-1) == 0, torch.finfo(out.dtype).min)
        logits = self.head(out.max(dim=1).values)  # (bs, num_labels)
        loss = _loss(logits, labels, self.config.num_labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


class StaticEmbeddingConfig(PretrainedConfig):
    model_type = "kd-static"

    def __init__(self, vocab_size: int = 30522, embedding_dim: int = 256, head_size: int = 256, pad_token_id: int = 0,
                 **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.head_size = head_size


class StaticEmbeddingForSequenceClassification(_TokenTableClassifier):
    """One static vector per token (as model2vec distills them from a sentence transformer), their mean
    over the real tokens, then Linear -> ReLU -> Linear. An nn.Embedding and a masked mean rather than an
    EmbeddingBag, so that the model exports to ONNX with dynamic batch and sequence axes."""

    config_class = StaticEmbeddingConfig
    base_model_prefix = "static"

    def __init__(self, config: StaticEmbeddingConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.head = nn.Sequential(
            nn.Linear(config.embedding_dim, config.head_size), nn.ReLU(), nn.Linear(config.head_size, config.num_labels),
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embedded = self.embeddings(input_ids)  # (bs, seq, dim)
        mask = attention_mask.unsqueeze(-1).to(embedded.dtype)  # (bs, seq, 1)
        pooled = (embedded * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (bs, dim)
        logits = self.head(pooled)  # (bs, num_labels)
        loss = _loss(logits, labels, self.config.num_labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


for _config, _model in ((MeanPoolConfig, MeanPoolForSequenceClassification),
                        (BiLSTMConfig, BiLSTMForSequenceClassification),
                        (StaticEmbeddingConfig, StaticEmbeddingForSequenceClassification)):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoModelForSequenceClassification.register(_config, _model, exist_ok=True)
    # save_pretrained then writes auto_map and copies this file beside the weights.
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForSequenceClassification")
