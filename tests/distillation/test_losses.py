"""The distillation loss against values computed by hand with the math module, and properties that must
hold for any logits and hidden states."""

import math
from types import SimpleNamespace

import pytest
import torch
from helpers import kl, load_hypothesis_profile
from hypothesis import given, settings
from hypothesis import strategies as st

from kd_bert.distillation.losses import (
    IGNORE_LABEL,
    attention_kl_loss,
    attention_mse_loss,
    cosine_hidden_loss,
    cross_entropy_loss,
    hidden_mse_loss,
    kd_kl_loss,
    kd_mse_loss,
    score_mse_loss,
    weighted_sum,
)
from kd_bert.distillation.objectives import DistillationObjective, LossSpec


def logit_loss(student, teacher, labels, temperature, alpha, kd_loss="kl", task="classification"):
    """The logit terms as a run computes them: the objective's alpha * KD + (1 - alpha) * the gold term, and
    each term on its own. No teacher logits (None): plain fine-tuning."""
    spec = LossSpec(temperature=temperature, alpha=alpha, kd_loss=kd_loss, task=task)
    batch = {"labels": labels} if teacher is None else {"labels": labels, "teacher_logits": teacher}
    return DistillationObjective(spec)(batch, SimpleNamespace(logits=student))


def softmax(xs, t=1.0):
    exps = [math.exp(x / t) for x in xs]
    return [e / sum(exps) for e in exps]


def test_kl_matches_hand_computation_at_t1():
    # p_teacher = softmax([ln 3, 0]) = [0.75, 0.25]; p_student = [0.5, 0.5]
    # KL = 0.75 ln 1.5 + 0.25 ln 0.5
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert kd_kl_loss(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_kl_is_scaled_by_t_squared(t):
    s, te = [0.3, -1.2, 2.0], [1.5, 0.1, -0.7]
    expected = t * t * kl(softmax(te, t), softmax(s, t))
    got = kd_kl_loss(torch.tensor([s]), torch.tensor([te]), t).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_batchmean_averages_per_example_kl():
    rows_s = [[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]]
    rows_t = [[1.0, 0.0, 0.0], [-1.0, 3.0, 0.0]]
    per_example = [4.0 * kl(softmax(t, 2.0), softmax(s, 2.0)) for s, t in zip(rows_s, rows_t)]
    got = kd_kl_loss(torch.tensor(rows_s), torch.tensor(rows_t), 2.0).item()
    assert got == pytest.approx(sum(per_example) / 2, rel=1e-5)  # mean over examples, not over labels


def test_kl_is_zero_when_student_equals_teacher():
    logits = torch.tensor([[0.2, -0.4, 1.1]])
    assert kd_kl_loss(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_cross_entropy_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    expected = (-math.log(softmax([2.0, 0.0])[0]) - math.log(softmax([0.0, 1.0])[0])) / 2
    assert cross_entropy_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_alpha_combines_the_two_terms():
    student = torch.tensor([[0.5, -0.5], [1.0, 2.0]])
    teacher = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    kd = kd_kl_loss(student, teacher, 2.0).item()
    ce = cross_entropy_loss(student, labels).item()
    total, terms = logit_loss(student, teacher, labels, temperature=2.0, alpha=0.3)
    assert total.item() == pytest.approx(0.3 * kd + 0.7 * ce, rel=1e-6)
    assert set(terms) == {"kd", "ce"}


def test_alpha_zero_is_plain_fine_tuning_without_a_teacher():
    student = torch.tensor([[0.5, -0.5]])
    labels = torch.tensor([1])
    total, terms = logit_loss(student, None, labels, temperature=2.0, alpha=0.0)
    assert set(terms) == {"ce"}
    assert total.item() == pytest.approx(cross_entropy_loss(student, labels).item())


def test_alpha_one_is_pure_distillation():
    student, teacher = torch.tensor([[0.5, -0.5]]), torch.tensor([[-1.0, 1.0]])
    total, terms = logit_loss(student, teacher, torch.tensor([0]), temperature=2.0, alpha=1.0)
    assert set(terms) == {"kd"}
    assert total.item() == pytest.approx(kd_kl_loss(student, teacher, 2.0).item())


def test_no_gradient_flows_into_the_teacher():
    student = torch.tensor([[0.1, 0.9]], requires_grad=True)
    teacher = torch.tensor([[1.0, -1.0]], requires_grad=True)
    total, _ = logit_loss(student, teacher, torch.tensor([0]), temperature=2.0, alpha=0.5)
    total.backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_finite_with_extreme_logits():
    student = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    teacher = torch.tensor([[-1e4, 1e4], [-1e4, 1e4]])
    total, _ = logit_loss(student, teacher, torch.tensor([0, 1]), temperature=2.0, alpha=0.5)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_finite_in_half_precision(dtype):
    student = torch.tensor([[60000.0, -60000.0], [3.0, -2.0]]).to(dtype).requires_grad_()
    teacher = torch.tensor([[-60000.0, 60000.0], [1.0, 1.0]]).to(dtype)
    total, terms = logit_loss(student, teacher, torch.tensor([0, 1]), temperature=2.0, alpha=0.5)
    total.backward()
    assert total.dtype == torch.float32  # terms compute in float32 whatever the logits' dtype
    assert torch.isfinite(total) and torch.isfinite(student.grad.float()).all()


def test_weighted_sum():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    assert weighted_sum(terms, {"a": 0.5, "b": 2.0}).item() == pytest.approx(7.0)


# ---------------------------------------------------------------- the other methods' terms


def test_mse_on_logits_by_hand():
    student, teacher = torch.tensor([[1.0, -1.0], [0.0, 2.0]]), torch.tensor([[0.0, 1.0], [0.5, 2.0]])
    expected = (1.0 + 4.0 + 0.25 + 0.0) / 4  # mean over every element
    assert kd_mse_loss(student, teacher).item() == pytest.approx(expected)
    total, terms = logit_loss(student, teacher, torch.tensor([0, 1]), 2.0, 1.0, kd_loss="mse")
    assert total.item() == pytest.approx(expected) and set(terms) == {"kd"}


def test_cross_entropy_skips_unlabeled_examples():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    only_first = -math.log(softmax([2.0, 0.0])[0])
    assert cross_entropy_loss(logits, torch.tensor([0, IGNORE_LABEL])).item() == pytest.approx(only_first, rel=1e-6)
    none = cross_entropy_loss(logits.requires_grad_(), torch.tensor([IGNORE_LABEL, IGNORE_LABEL]))
    assert none.item() == 0.0 and none.requires_grad


def test_hidden_mse_counts_real_tokens_only():
    # batch 1, seq 3 (the last is padding), hidden 2
    student = torch.tensor([[[1.0, 1.0], [0.0, 2.0], [9.0, 9.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    expected = ((1.0 + 0.0) / 2 + (0.0 + 4.0) / 2) / 2  # per-token mean over hidden, then over 2 real tokens
    assert hidden_mse_loss(student, teacher, mask).item() == pytest.approx(expected)


def test_cosine_loss_by_hand():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [1.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    expected = ((1 - 0.0) + (1 - 1.0)) / 2  # orthogonal, then parallel; the padded token ignored
    assert cosine_hidden_loss(student, teacher, mask).item() == pytest.approx(expected)


def _attention(rows):
    return torch.tensor([[rows]])  # (batch 1, heads 1, seq, seq)


def test_attention_mse_by_hand():
    student = _attention([[0.5, 0.5], [1.0, 0.0]])
    teacher = _attention([[1.0, 0.0], [1.0, 0.0]])
    mask = torch.tensor([[1, 1]])
    expected = ((0.25 + 0.25) / 2 + 0.0) / 2
    assert attention_mse_loss(student, teacher, mask).item() == pytest.approx(expected)


def test_attention_kl_by_hand():
    student = _attention([[0.5, 0.5], [0.25, 0.75]])
    teacher = _attention([[0.75, 0.25], [0.25, 0.75]])
    mask = torch.tensor([[1, 1]])
    expected = (kl([0.75, 0.25], [0.5, 0.5]) + 0.0) / 2
    assert attention_kl_loss(student, teacher, mask).item() == pytest.approx(expected, rel=1e-5)


def test_attention_heads_are_averaged_when_counts_differ():
    student = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]])  # 1 head
    teacher = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # 2 heads, mean = uniform
    mask = torch.tensor([[1, 1]])
    assert attention_mse_loss(student, teacher, mask).item() == pytest.approx(0.0)


# ---------------------------------------------------------------- a score's terms (regression)


def test_regression_losses_by_hand():
    student = torch.tensor([[1.0], [2.5], [4.0]])  # (batch, 1): one score each
    teacher = torch.tensor([[1.5], [2.0], [3.0]])
    labels = torch.tensor([2.0, IGNORE_LABEL, 3.0])  # the middle example has no gold score
    gold = ((1.0 - 2.0) ** 2 + (4.0 - 3.0) ** 2) / 2
    kd = ((1.0 - 1.5) ** 2 + (2.5 - 2.0) ** 2 + (4.0 - 3.0) ** 2) / 3
    assert score_mse_loss(student, labels).item() == pytest.approx(gold)
    none = score_mse_loss(student.requires_grad_(), torch.full((3,), float(IGNORE_LABEL)))
    assert none.item() == 0.0 and none.requires_grad
    for temperature, kd_loss in ((1.0, "kl"), (4.0, "kl"), (2.0, "mse")):  # neither applies to a score
        total, terms = logit_loss(student, teacher, labels, temperature, 0.3, kd_loss, task="regression")
        assert set(terms) == {"kd", "mse"}
        assert terms["kd"].item() == pytest.approx(kd) and total.item() == pytest.approx(0.3 * kd + 0.7 * gold)
    total, terms = logit_loss(student, None, labels, 2.0, 0.0, task="regression")
    assert set(terms) == {"mse"} and total.item() == pytest.approx(gold)
    assert str(DistillationObjective(LossSpec(alpha=0.5, temperature=4, task="regression"))) == "0.5 * kd_mse + 0.5 * mse"
    assert str(DistillationObjective(LossSpec(task="regression"))) == "1 * mse"
    assert str(DistillationObjective(LossSpec(alpha=0.5, temperature=4))) == "0.5 * kd_kl(T=4) + 0.5 * ce"


# ---------------------------------------------------------------- properties that hold for any input


load_hypothesis_profile()


logit = st.floats(min_value=-60, max_value=60, allow_nan=False, width=32)


@st.composite
def logit_pairs(draw):
    batch, labels = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    rows = st.lists(st.lists(logit, min_size=labels, max_size=labels), min_size=batch, max_size=batch)
    return torch.tensor(draw(rows)), torch.tensor(draw(rows))


@given(logit_pairs(), st.floats(min_value=0.1, max_value=20))
@settings(max_examples=200, deadline=None)
def test_kl_is_finite_and_non_negative(pair, temperature):
    student, teacher = pair
    value = kd_kl_loss(student, teacher, temperature)
    assert torch.isfinite(value) and value.item() >= -1e-5
    assert abs(kd_kl_loss(teacher, teacher, temperature).item()) < 1e-4  # zero when the student is the teacher


@given(logit_pairs())
@settings(max_examples=100, deadline=None)
def test_cross_entropy_is_finite(pair):
    student, _ = pair
    labels = torch.zeros(len(student), dtype=torch.long)
    value = cross_entropy_loss(student, labels)
    assert torch.isfinite(value) and value.item() >= 0


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 8), st.data())
@settings(max_examples=60, deadline=None)
def test_hidden_terms_are_bounded(batch, seq, width, data):
    values = st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=batch * seq * width,
                      max_size=batch * seq * width)
    student = torch.tensor(data.draw(values)).reshape(batch, seq, width)
    teacher = torch.tensor(data.draw(values)).reshape(batch, seq, width)
    mask = torch.tensor(data.draw(st.lists(st.sampled_from([0, 1]), min_size=batch * seq, max_size=batch * seq)))
    mask = mask.reshape(batch, seq)
    assert hidden_mse_loss(student, teacher, mask).item() >= 0
    cos = cosine_hidden_loss(student, teacher, mask).item()
    assert -1e-5 <= cos <= 2 + 1e-5
    assert hidden_mse_loss(teacher, teacher, mask).item() == 0
