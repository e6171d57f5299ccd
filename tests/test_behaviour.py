"""Features observed through what they do, not read back from the records a run writes about itself:
bf16 autocast reaches the layers, the attention KL term is the KL of the mapped layers, the best epoch's
weights are the ones saved, and the teacher-logit cache key changes with each thing the logits depend
on and nothing else. In-process through the API, on tiny models."""

from __future__ import annotations

import random

import pytest
import torch
from helpers import NEGATIVE, POSITIVE, labeled, tiny_bert, train_tokenizer, write_task
from safetensors.torch import load_file
from torch import nn

from kd_bert import DataConfig, TrainConfig, train_teacher

QUIET = dict(report_to=["none"], batch_size=8)

# ------------------------------------------------------------- bf16 autocast reaches the layers


@pytest.mark.parametrize("mode, dtype", [("bf16", torch.bfloat16), ("no", torch.float32)])
def test_mixed_precision_sets_the_dtype_the_linear_layers_compute_in(mode, dtype, sst2_slice, tiny_models, tmp_path,
                                                                      monkeypatch):
    """A forward hook on every Linear of the model the job loads sees the activations of training and
    validation; bf16 autocast must make them bf16 (on any CPU: without native bf16 it is emulated),
    and `no` must leave them float32."""
    import kd_bert.jobs.teacher as jobs

    seen: dict[bool, set] = {True: set(), False: set()}  # training mode -> output dtypes

    def record(module, inputs, output):
        seen[module.training].add(output.dtype)

    def load_and_watch(*args, **kwargs):
        model = load_classifier(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(record)
        return model

    load_classifier = jobs.load_classifier
    monkeypatch.setattr(jobs, "load_classifier", load_and_watch)
    result = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sst2_slice), max_length=32,
                                                                         max_eval_samples=16),
                           TrainConfig(output_dir=str(tmp_path), num_train_epochs=1, max_train_samples=16,
                                       mixed_precision=mode, **QUIET))
    assert seen == {True: {dtype}, False: {dtype}}
    # The weights themselves stay float32: autocast casts per operation.
    assert all(t.dtype == torch.float32 for t in load_file(str(result.model_dir / "model.safetensors")).values())


# ------------------------------------------------------------- the best epoch is the one saved


@pytest.fixture(scope="module")
def inverted_dev(tmp_path_factory) -> dict:
    """The keyword task (test_learning) with every validation label flipped: the more the model learns,
    the worse it scores, so the first epoch, which has learned least, is the best one."""
    root = tmp_path_factory.mktemp("inverted")
    rng = random.Random(1)
    train, dev = labeled(rng, 384, POSITIVE, NEGATIVE), labeled(rng, 48, POSITIVE, NEGATIVE)
    flipped = [[text, str(1 - int(label))] for text, label in dev]
    tokenizer = train_tokenizer([text for text, _ in train + dev], 200, root / "vocab")
    return {"data": write_task(root / "data", train, flipped),
            "base": tiny_bert(root / "base", tokenizer, hidden=64, layers=2, seed=1)}


def test_a_run_whose_first_epoch_is_best_saves_the_first_epochs_weights(inverted_dev, tmp_path):
    result = train_teacher(str(inverted_dev["base"]), DataConfig(data_path=str(inverted_dev["data"]), max_length=16),
                           TrainConfig(output_dir=str(tmp_path), num_train_epochs=3, learning_rate=2e-3,
                                       checkpointing_steps="epoch", **QUIET))
    accuracies = [epoch["eval"]["accuracy"] for epoch in result.history]
    # The run is what the test needs: the last epoch learned the task, and so scored worse. Epoch 2 may
    # still be on the untrained plateau (0.5, every sentence given one label) and tie with epoch 1; a tie
    # keeps the earlier epoch.
    assert accuracies[0] >= max(accuracies[1:]) and accuracies[-1] < accuracies[0] - 0.2, accuracies
    checkpoints = sorted((tmp_path / "checkpoints" / "teacher").glob("step-*"), key=lambda p: int(p.name[5:]))
    assert len(checkpoints) == 3
    saved = load_file(str(result.model_dir / "model.safetensors"))
    first, last = (load_file(str(c / "model.safetensors")) for c in (checkpoints[0], checkpoints[-1]))
    assert set(saved) == set(first)
    assert all(torch.equal(saved[k], first[k]) for k in saved)
    assert not all(torch.equal(saved[k], last[k]) for k in saved)  # so the comparison above means something
    # And the saved folder scores what epoch 1 scored.
    from kd_bert import EvalConfig, evaluate

    scored = evaluate(EvalConfig(model=str(result.model_dir), latency_samples=0, mixed_precision="no"),
                      DataConfig(data_path=str(inverted_dev["data"]), max_length=16))
    assert scored.metrics["accuracy"] == accuracies[0]


def test_weight_decay_shrinks_the_weight_matrices_and_spares_biases_and_layernorm(tiny_models):
    """With no gradient at all, AdamW's decoupled weight decay alone moves the weights: every matrix
    shrinks by exactly (1 - lr * weight_decay) per update, while biases and LayerNorm weights, which BERT
    was pre-trained without decay on, stay as they were."""
    from transformers import AutoModelForSequenceClassification

    from kd_bert.config import TrainConfig as Config
    from kd_bert.train.optim import adamw

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["student_base"], num_labels=2)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    cfg = Config(learning_rate=0.1, weight_decay=0.5)
    optimizer = adamw(list(model.parameters()), cfg, torch.device("cpu"))
    for _ in range(3):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
    factor = (1 - 0.1 * 0.5) ** 3
    for name, p in model.named_parameters():
        if p.ndim < 2:  # biases and LayerNorm weights
            assert torch.equal(p.detach(), before[name]), name
        else:
            assert torch.allclose(p.detach(), before[name] * factor, rtol=1e-5, atol=1e-7), name
