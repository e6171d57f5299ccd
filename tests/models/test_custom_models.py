"""The project's own model classes (BiLSTM, mean pooling) with one output for a score: the loss is the
squared error, and plain transformers loads them back to the same outputs."""

import pytest
import torch

from kd_bert.task import REGRESSION_LABEL


@pytest.mark.parametrize("kind", ["bilstm", "mean_pool"])
def test_custom_heads_with_one_output(kind, tiny_models, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from kd_bert.models.load import load_classifier, load_tokenizer
    from kd_bert.models.students import bilstm_classifier

    base = tiny_models["student_base"]
    tokenizer = load_tokenizer(str(base), "--student_model")
    if kind == "bilstm":
        model = bilstm_classifier(tokenizer, [REGRESSION_LABEL], 8, 8, 1, 8)
    else:
        model = load_classifier(str(base), "--student_model", [REGRESSION_LABEL], head="mean_pool")
    inputs = tokenizer(["a good film", "dull"], padding=True, return_tensors="pt")
    labels = torch.tensor([3.5, 1.0])
    out = model.eval()(**inputs, labels=labels)
    assert out.logits.shape == (2, 1)
    assert out.loss.item() == pytest.approx(torch.mean((out.logits[:, 0] - labels) ** 2).item())
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, trust_remote_code=True).eval()
    assert loaded.config.problem_type == "regression" and loaded.config.num_labels == 1
    assert torch.allclose(loaded(**inputs).logits, out.logits)
