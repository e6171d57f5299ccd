"""Each model gets its own encoding; identical tokenizers share one; batches pad dynamically, group by
length, and carry float labels for scores and ids as longs."""

import pytest
import torch
from transformers import AutoTokenizer

from kd_bert.data.batching import (
    MODEL,
    TEACHER,
    Collator,
    EncodedSplit,
    Encoding,
    encode_for_models,
    eval_loader,
)
from kd_bert.distillation.losses import IGNORE_LABEL

TEXTS = ["a gorgeous , witty film", "dull", "an utterly lifeless and predictable mess of a movie"]


def test_same_tokenizer_is_tokenized_once(tiny_models):
    a = AutoTokenizer.from_pretrained(str(tiny_models["teacher_base"]))
    b = AutoTokenizer.from_pretrained(str(tiny_models["student_base"]))  # same vocabulary, another object
    encodings = encode_for_models(TEXTS, {MODEL: b, TEACHER: a}, max_length=32)
    assert encodings[MODEL] is encodings[TEACHER]


def test_different_tokenizers_get_their_own_ids(tiny_models):
    teacher = AutoTokenizer.from_pretrained(str(tiny_models["teacher_base"]))
    student = AutoTokenizer.from_pretrained(str(tiny_models["student_own_vocab"]))
    encodings = encode_for_models(TEXTS, {MODEL: student, TEACHER: teacher}, max_length=32)
    assert encodings[MODEL] is not encodings[TEACHER]
    assert encodings[MODEL].input_ids == student(TEXTS, truncation=True, max_length=32)["input_ids"]
    assert encodings[TEACHER].input_ids == teacher(TEXTS, truncation=True, max_length=32)["input_ids"]
    batch = Collator(EncodedSplit(encodings, [1, 0, 0]))([0, 2])
    for name, tokenizer in ((MODEL, student), (TEACHER, teacher)):
        expected = tokenizer([TEXTS[0], TEXTS[2]], padding=True, truncation=True, max_length=32, return_tensors="pt")
        assert batch[name]["input_ids"].tolist() == expected["input_ids"].tolist()  # padded to this batch's longest
        assert batch[name]["attention_mask"].tolist() == expected["attention_mask"].tolist()
    assert batch["labels"].tolist() == [1, 0] and batch["row"].tolist() == [0, 2]


def test_evaluation_batches_run_in_length_order_and_keep_rows(tiny_models):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models["teacher_base"]))
    split = EncodedSplit(encode_for_models(TEXTS, {MODEL: tokenizer}, max_length=32), None)
    rows = [r for batch in eval_loader(split, batch_size=2) for r in batch["row"].tolist()]
    lengths = split.lengths()
    assert sorted(rows) == [0, 1, 2]
    assert [lengths[r] for r in rows] == sorted(lengths)


def sst2_train_lengths(tokenizer_folder):
    from helpers import SST2, read_tsv

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))
    texts = [r[0] for r in read_tsv(SST2 / "train.tsv")[1:]]
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]


def efficiency(plan, lengths):
    batches = list(plan)
    real = sum(lengths[r] for b in batches for r in b)
    padded = sum(len(b) * max(lengths[r] for r in b) for b in batches)
    return real / padded


def test_length_grouped_batches_on_sst2(tiny_models):
    from kd_bert.data.batching import BatchPlan

    lengths = sst2_train_lengths(tiny_models["teacher_base"])  # all 67,349 real training sentences
    grouped = BatchPlan(lengths, batch_size=32, seed=42, group_by_length=True)
    epochs = []
    for epoch in range(2):
        grouped.set_epoch(epoch)
        batches = list(grouped)
        rows = sorted(r for b in batches for r in b)
        assert rows == list(range(len(lengths)))  # every example exactly once per epoch
        assert len(batches) == len(grouped)
        epochs.append(batches)
        assert efficiency(grouped, lengths) >= 0.9
    assert epochs[0] != epochs[1]  # a new grouping each epoch
    grouped.set_epoch(0)
    assert list(grouped) == epochs[0]  # ...that depends on (seed, epoch) alone
    random_batches = BatchPlan(lengths, batch_size=32, seed=42, group_by_length=False)
    assert efficiency(random_batches, lengths) < 0.7  # what grouping saves


def test_float_labels_batch_as_floats_and_ids_as_longs():
    encoding = Encoding([[1, 5, 2], [1, 6, 7, 2]], None, 0)
    scores = Collator(EncodedSplit({"model": encoding}, [3.8, IGNORE_LABEL]))([0, 1])["labels"]
    assert scores.dtype == torch.float32 and scores.tolist() == [pytest.approx(3.8), -100.0]
    ids = Collator(EncodedSplit({"model": encoding}, [1, 0]))([0, 1])["labels"]
    assert ids.dtype == torch.long
