"""The optimizer: AdamW's decoupled weight decay shrinks the weight matrices and spares biases and
LayerNorm, and --freeze_embeddings keeps the word-embedding table as it was while the rest trains."""

from __future__ import annotations

import torch
from helpers import run_script


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


def test_freeze_embeddings_keeps_the_table_and_trains_the_rest(sst2_slice, tiny_models, tmp_path):
    from safetensors.torch import load_file

    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path, "--freeze_embeddings",
                        "--num_train_epochs", "1", "--max_train_samples", "64", "--batch_size", "16",
                        "--learning_rate", "1e-3")
    assert result.returncode == 0, result
    base = load_file(tiny_models["teacher_base"] / "model.safetensors")
    trained = load_file(tmp_path / "teacher" / "model.safetensors")
    name = "embeddings.word_embeddings.weight"
    assert torch.equal(trained[f"bert.{name}"], base[name])
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained[f"bert.{layer}"], base[layer])
    assert not torch.equal(trained["bert.embeddings.position_embeddings.weight"],
                           base["embeddings.position_embeddings.weight"])
