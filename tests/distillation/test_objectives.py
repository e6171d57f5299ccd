"""The objective: its weighted terms over the mapped layers, and the attention KL term as the KL of each
query row against the mapped teacher layer, computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import kl

from kd_bert.distillation.losses import hidden_mse_loss


def test_objective_sums_intermediate_terms_over_mapped_layers_with_their_weights():
    from types import SimpleNamespace

    from kd_bert.data.batching import MODEL
    from kd_bert.distillation.objectives import DistillationObjective, LossSpec

    torch.manual_seed(0)
    hs_student = [torch.randn(2, 3, 4) for _ in range(3)]  # embeddings + 2 layers
    hs_teacher = [torch.randn(2, 3, 4) for _ in range(5)]  # embeddings + 4 layers
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    spec = LossSpec(alpha=0.0, logits=False, weights={"hidden": 2.0, "embedding": 0.5}, layer_map=[2, 4])
    objective = DistillationObjective(spec)
    student = SimpleNamespace(logits=torch.zeros(2, 2), hidden_states=hs_student)
    teacher = {"hidden_states": hs_teacher}
    objective.run_teacher = lambda batch: {"logits": torch.zeros(2, 2), **teacher}
    total, terms = objective({MODEL: {"attention_mask": mask}, "labels": torch.tensor([0, 1])}, student)
    hidden = hidden_mse_loss(hs_student[1], hs_teacher[2], mask) + hidden_mse_loss(hs_student[2], hs_teacher[4], mask)
    embedding = hidden_mse_loss(hs_student[0], hs_teacher[0], mask)
    assert terms["hidden"].item() == pytest.approx(hidden.item())
    assert total.item() == pytest.approx(2.0 * hidden.item() + 0.5 * embedding.item())
    assert objective.model_outputs == ("hidden_states",)


def test_uniform_layer_map():
    from kd_bert.distillation.objectives import uniform_layer_map

    assert uniform_layer_map(4, 12) == [3, 6, 9, 12]  # TinyBERT-4L from BERT-base
    assert uniform_layer_map(3, 6) == [2, 4, 6]
    assert uniform_layer_map(6, 6) == [1, 2, 3, 4, 5, 6]


def test_attention_kl_is_the_kl_of_each_query_row_against_the_mapped_teacher_layer():
    """The objective's attention term with --attention_loss kl, for 1 student layer mapped to teacher
    layer 1 of 2: KL(teacher row || student row) per real query token, averaged; mse gives the squared
    error instead, and another layer map compares with another teacher layer."""
    from kd_bert.data.batching import MODEL
    from kd_bert.distillation.objectives import DistillationObjective, LossSpec

    student = [[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]]  # 3 tokens, the last one padding
    layer1 = [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]]
    layer2 = [[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]]
    maps = lambda rows: torch.tensor([[rows]])  # noqa: E731  (batch 1, 1 head, seq 3, seq 3)
    mask = torch.tensor([[1, 1, 0]])
    outputs = SimpleNamespace(logits=torch.zeros(1, 2), attentions=[maps(student)])
    batch = {MODEL: {"attention_mask": mask}, "labels": torch.tensor([0])}

    def term(loss: str, layer_map: list[int]) -> float:
        spec = LossSpec(logits=False, weights={"attention": 1.0}, variants={"attention": loss}, layer_map=layer_map)
        objective = DistillationObjective(spec)
        objective.run_teacher = lambda batch: {"logits": torch.zeros(1, 2), "attentions": [maps(layer1),
                                                                                            maps(layer2)]}
        total, terms = objective(batch, outputs)
        assert total.item() == pytest.approx(terms["attention"].item())
        return terms["attention"].item()

    def by_hand_kl(teacher):
        return (kl(teacher[0], student[0]) + kl(teacher[1], student[1])) / 2  # padding query row left out

    def by_hand_mse(teacher):
        rows = [sum((t - s) ** 2 for t, s in zip(teacher[i], student[i])) / 3 for i in (0, 1)]
        return sum(rows) / 2

    assert term("kl", [1]) == pytest.approx(by_hand_kl(layer1), rel=1e-5)
    assert term("kl", [2]) == pytest.approx(by_hand_kl(layer2), rel=1e-5)
    assert term("mse", [1]) == pytest.approx(by_hand_mse(layer1), rel=1e-5)
    # Not symmetric: the teacher's row is the target distribution.
    assert by_hand_kl(layer1) != pytest.approx((kl(student[0], layer1[0]) + kl(student[1], layer1[1])) / 2, rel=1e-2)
    assert term("kl", [1]) != pytest.approx(term("mse", [1]), rel=1e-2)


@pytest.mark.parametrize("flags", [{}, {"kd_loss": "mse", "alpha": 0.7}, {"hidden_weight": 1.0, "attention_weight": 0.5,
                                                                          "attention_loss": "kl", "layer_map": [2]},
                                   {"stage": "intermediate", "embedding_weight": 1.0},
                                   {"stage": "prediction", "cos_weight": 0.3}])
def test_the_spec_from_a_config_is_the_one_the_distillation_job_builds(flags):
    from kd_bert.config import DistillConfig
    from kd_bert.distillation.objectives import DistillationObjective, LossSpec
    from kd_bert.jobs.distill import loss_spec

    distill = DistillConfig(**flags)
    ours, job = LossSpec.from_config(distill), loss_spec(distill)
    assert ours.to_json() == job.to_json() and list(ours.to_json()) == list(job.to_json())
    assert str(DistillationObjective(ours)) == str(DistillationObjective(job))


def test_a_logit_term_with_its_own_weight_is_computed_printed_and_recorded_from_its_declaration(monkeypatch):
    """A term declared in LOGIT_TERMS with OWN_WEIGHT: its weight is read by name, it joins the printed
    objective and the total, a teacher target makes the teacher needed, and metrics.json records its weight."""
    from kd_bert.data.batching import MODEL
    from kd_bert.distillation import objectives
    from kd_bert.distillation.losses import cross_entropy_loss, kd_kl_loss, kd_mse_loss
    from kd_bert.distillation.objectives import DistillationObjective
    from kd_bert.registries.terms import CLASSIFICATION, LOGIT_TERMS, OWN_WEIGHT, TEACHER, LogitTerm

    extra = LogitTerm("logit_mse", TEACHER, "kd_mse_loss", OWN_WEIGHT, task=CLASSIFICATION, help="weight")
    monkeypatch.setattr(objectives, "LOGIT_TERMS", (*LOGIT_TERMS, extra))
    student, teacher = torch.tensor([[0.5, -0.5], [1.0, 2.0]]), torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    spec = objectives.LossSpec(alpha=0.5, temperature=2.0, weights={"logit_mse": 3.0})
    objective = DistillationObjective(spec)
    assert str(objective) == "0.5 * kd_kl(T=2) + 0.5 * ce + 3 * logit_mse"
    total, terms = objective({MODEL: {}, "labels": labels, "teacher_logits": teacher}, SimpleNamespace(logits=student))
    assert list(terms) == ["kd", "ce", "logit_mse"]
    expected = 0.5 * kd_kl_loss(student, teacher, 2.0) + 0.5 * cross_entropy_loss(student, labels) \
        + 3.0 * kd_mse_loss(student, teacher)
    assert total.item() == pytest.approx(expected.item())
    assert spec.to_json()["logit_mse_weight"] == 3.0
    assert objectives.LossSpec(alpha=0.0, weights={"logit_mse": 1.0}).needs_teacher
    assert str(DistillationObjective(objectives.LossSpec(alpha=0.5, weights={"logit_mse": 1.0}, task="regression"))) \
        == "0.5 * kd_mse + 0.5 * mse"  # declared for classification only
    assert str(DistillationObjective(objectives.LossSpec(alpha=0.5, weights={"logit_mse": 1.0}, logits=False))) == "0"
