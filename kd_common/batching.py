"""Tokenization and batching.

Each model gets its own encoding of the same text: a teacher and a student with different
tokenizers (a BERT teacher, a TinyBERT-like student) each see their own input ids. When the two
tokenizers are the same, the text is tokenized once and both read the same ids.

Texts are tokenized once, up front, without padding; each batch is padded to its own longest
sequence (dynamic padding). Evaluation batches run in length order, so they carry little padding;
every batch carries `row`, each example's position in its split, so predictions go back in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

MODEL, TEACHER = "model", "teacher"  # batch keys: the model being trained or scored, and its teacher


@dataclass
class Encoding:
    """One tokenizer's encoding of one split, unpadded."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    pad_id: int


def encode(tokenizer, texts: list[str], max_length: int) -> Encoding:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    token_types = enc.get("token_type_ids") if "token_type_ids" in tokenizer.model_input_names else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoding(enc["input_ids"], token_types, pad_id)


def same_tokenizer(a, b) -> bool:
    """True when a and b turn every text into the same ids: same vocabulary, normalizer and
    special tokens (the serialized fast tokenizer covers all of them)."""
    if a is b:
        return True
    try:
        return _definition(a) == _definition(b)
    except AttributeError:  # a slow tokenizer: compare what defines its output
        return type(a) is type(b) and a.get_vocab() == b.get_vocab() and a.init_kwargs == b.init_kwargs


def _definition(tokenizer) -> dict:
    # Calling a tokenizer with truncation/padding stores those settings in its backend; they are
    # per call, not part of what the tokenizer is, so they are left out of the comparison.
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return spec


def encode_for_models(texts: list[str], tokenizers: dict[str, object], max_length: int) -> dict[str, Encoding]:
    """{model name: Encoding}; models whose tokenizers match share one Encoding object."""
    encodings: dict[str, Encoding] = {}
    for name, tokenizer in tokenizers.items():
        twin = next((other for other in encodings if same_tokenizer(tokenizers[other], tokenizer)), None)
        encodings[name] = encodings[twin] if twin else encode(tokenizer, texts, max_length)
    return encodings


class EncodedSplit(Dataset):
    """Examples of one split, optionally in a given order (e.g. by length)."""

    def __init__(self, encodings: dict[str, Encoding], labels: list[int] | None, order: list[int] | None = None):
        self.encodings = encodings
        self.labels = labels
        n = len(next(iter(encodings.values())).input_ids)
        self.order = list(range(n)) if order is None else order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> int:
        return self.order[i]  # the collator gathers the example's fields by its row

    def lengths(self, name: str = MODEL) -> list[int]:
        return [len(ids) for ids in self.encodings[name].input_ids]

    def sorted_by_length(self) -> "EncodedSplit":
        lengths = self.lengths()
        return EncodedSplit(self.encodings, self.labels, sorted(self.order, key=lambda r: lengths[r]))


class Collator:
    """Rows -> a batch: {"row": (bs,), "labels": (bs,), "model": {...}, "teacher": {...}} with each
    model's input_ids, attention_mask (and token_type_ids) padded to the batch's longest (bs, seq_len)."""

    def __init__(self, split: EncodedSplit):
        self.split = split

    def __call__(self, rows: list[int]) -> dict:
        batch: dict = {"row": torch.tensor(rows, dtype=torch.long)}
        if self.split.labels is not None:
            batch["labels"] = torch.tensor([self.split.labels[r] for r in rows], dtype=torch.long)
        padded: dict[int, dict] = {}
        for name, encoding in self.split.encodings.items():
            key = id(encoding)
            if key not in padded:  # a shared encoding is padded once
                padded[key] = _pad(encoding, rows)
            batch[name] = padded[key]
        return batch


def _pad(encoding: Encoding, rows: list[int]) -> dict[str, torch.Tensor]:
    seqs = [encoding.input_ids[r] for r in rows]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), encoding.pad_id, dtype=torch.long)  # (bs, seq_len)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attention_mask[i, : len(s)] = 1
    out = {"input_ids": input_ids, "attention_mask": attention_mask}
    if encoding.token_type_ids is not None:
        token_type_ids = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, r in enumerate(rows):
            tt = encoding.token_type_ids[r]
            token_type_ids[i, : len(tt)] = torch.tensor(tt, dtype=torch.long)
        out["token_type_ids"] = token_type_ids
    return out


def train_loader(split: EncodedSplit, batch_size: int, seed: int) -> DataLoader:
    # A seeded generator makes the shuffle order a function of --seed alone.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(split, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=Collator(split))


def eval_loader(split: EncodedSplit, batch_size: int) -> DataLoader:
    ordered = split.sorted_by_length()
    return DataLoader(ordered, batch_size=batch_size, shuffle=False, collate_fn=Collator(ordered))
