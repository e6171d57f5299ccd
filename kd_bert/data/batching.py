"""Tokenization and batching.

Each model gets its own encoding of the same text: a teacher and a student with different
tokenizers (a BERT teacher, a TinyBERT-like student) each see their own input ids. When the two
tokenizers are the same, the text is tokenized once and both read the same ids.

Texts are tokenized once, up front, without padding; each batch is padded to its own longest
sequence (dynamic padding). Training batches group sentences of similar length (BatchPlan), and
evaluation batches run in length order, so both carry little padding. Every batch carries `row`,
each example's position in its split, so predictions go back in order and cached teacher logits
are looked up by it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

MODEL, TEACHER = "model", "teacher"  # batch keys: the model being trained or scored, and its teacher


@dataclass
class Encoding:
    """One tokenizer's encoding of one split, unpadded."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    pad_id: int


def encode(tokenizer, texts: list[str], max_length: int, pairs: list[str] | None = None) -> Encoding:
    """Token ids of each text (or text pair: [CLS] a [SEP] b [SEP], the longer side truncated first)."""
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    token_types = enc.get("token_type_ids") if "token_type_ids" in tokenizer.model_input_names else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoding(enc["input_ids"], token_types, pad_id)


def encoding_rows(encoding: Encoding, start: int, stop: int) -> Encoding:
    """Rows start to stop of an encoding, as an encoding of their own."""
    types = None if encoding.token_type_ids is None else encoding.token_type_ids[start:stop]
    return Encoding(encoding.input_ids[start:stop], types, encoding.pad_id)


def same_tokenizer(a, b) -> bool:
    """True when a and b turn every text into the same ids: same vocabulary, normalizer and
    special tokens (the serialized fast tokenizer covers all of them)."""
    if a is b:
        return True
    try:
        return _definition(a) == _definition(b)
    except AttributeError:  # a slow tokenizer: compare what defines its output
        return type(a) is type(b) and a.get_vocab() == b.get_vocab() and a.init_kwargs == b.init_kwargs


def tokenizer_digest(tokenizer) -> str:
    """A short digest of what defines a tokenizer's output (see same_tokenizer)."""
    try:
        text = json.dumps(_definition(tokenizer), sort_keys=True)
    except AttributeError:
        text = json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items())])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _definition(tokenizer) -> dict:
    # Calling a tokenizer with truncation/padding stores those settings in its backend; they are
    # per call, not part of what the tokenizer is, so they are left out of the comparison.
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return spec


def encode_for_models(texts: list[str], tokenizers: dict[str, object], max_length: int,
                      pairs: list[str] | None = None) -> dict[str, Encoding]:
    """{model name: Encoding}; models whose tokenizers match share one Encoding object."""
    encodings: dict[str, Encoding] = {}
    for name, tokenizer in tokenizers.items():
        twin = next((other for other in encodings if same_tokenizer(tokenizers[other], tokenizer)), None)
        encodings[name] = encodings[twin] if twin else encode(tokenizer, texts, max_length, pairs)
    return encodings


class EncodedSplit(Dataset):
    """Examples of one split, optionally in a given order (e.g. by length)."""

    def __init__(self, encodings: dict[str, Encoding], labels: list[int] | list[float] | None,
                 order: list[int] | None = None, teacher_logits: torch.Tensor | None = None):
        self.encodings = encodings
        self.labels = labels
        self.teacher_logits = teacher_logits  # (num_examples, num_labels), row-indexed, when cached
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
        return EncodedSplit(self.encodings, self.labels, sorted(self.order, key=lambda r: lengths[r]), self.teacher_logits)


class Collator:
    """Rows -> a batch: {"row": (bs,), "labels": (bs,), "model": {...}, "teacher": {...}} with each
    model's input_ids, attention_mask (and token_type_ids) padded to the batch's longest (bs, seq_len).
    Labels are long class ids, or float scores for a regression task (any float label makes it one)."""

    def __init__(self, split: EncodedSplit):
        self.split = split
        labels = split.labels or []
        # A transfer set's perturbed copies carry the int IGNORE_LABEL among float scores: -100.0 here.
        self.label_dtype = torch.float32 if any(isinstance(label, float) for label in labels) else torch.long

    def __call__(self, rows: list[int]) -> dict:
        batch: dict = {"row": torch.tensor(rows, dtype=torch.long)}
        if self.split.labels is not None:
            batch["labels"] = torch.tensor([self.split.labels[r] for r in rows], dtype=self.label_dtype)
        if self.split.teacher_logits is not None:
            batch["teacher_logits"] = self.split.teacher_logits[batch["row"]]  # (bs, num_labels)
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


MEGA_BATCH_FACTOR = 50  # batches per mega-batch, as in Hugging Face's LengthGroupedSampler


class BatchPlan(Sampler):
    """The training batches of one epoch, reshuffled every epoch from (seed, epoch) alone.

    With group_by_length, a seeded permutation of the examples is cut into mega-batches of
    MEGA_BATCH_FACTOR * batch_size examples; each is sorted by length and cut into batches, and
    the order of all batches is shuffled. A batch then holds sentences of similar length, so dynamic
    padding pads little, while which sentences meet in a batch still changes every epoch. Without
    it, batches are plain random slices of the permutation. Either way every example appears
    exactly once per epoch.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool = True):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        # Mega-batches are whole multiples of batch_size, so only the last batch can be short.
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        bs = self.batch_size
        if not self.group_by_length:
            yield from (order[i : i + bs] for i in range(0, len(order), bs))
            return
        mega = MEGA_BATCH_FACTOR * bs
        batches = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda r: self.lengths[r], reverse=True)
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        # The batch with the longest sentence goes first: running out of memory shows at step 1.
        longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
        batches[0], batches[longest] = batches[longest], batches[0]
        yield from batches


def train_loader(split: EncodedSplit, batch_size: int, seed: int, group_by_length: bool = True) -> DataLoader:
    plan = BatchPlan(split.lengths(), batch_size, seed, group_by_length)
    return DataLoader(split, batch_sampler=plan, collate_fn=Collator(split))


def padding_stats(batch: dict, inputs: str = MODEL) -> tuple[torch.Tensor, int]:
    """(real tokens, tokens processed) of one batch's inputs: their ratio is the padding efficiency.
    The count stays a tensor on the batch's device, so reading it costs no device sync per step."""
    mask = batch[inputs]["attention_mask"]  # (bs, seq_len)
    return mask.sum(), mask.numel()


def eval_loader(split: EncodedSplit, batch_size: int) -> DataLoader:
    ordered = split.sorted_by_length()
    return DataLoader(ordered, batch_size=batch_size, shuffle=False, collate_fn=Collator(ordered))
