"""The distillation loss against values computed by hand with the math module."""

import math

import pytest
import torch

from kd_common.losses import cross_entropy_loss, distillation_loss, kd_kl_loss, weighted_sum


def softmax(xs, t=1.0):
    exps = [math.exp(x / t) for x in xs]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


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
    total, terms = distillation_loss(student, teacher, labels, temperature=2.0, alpha=0.3)
    assert total.item() == pytest.approx(0.3 * kd + 0.7 * ce, rel=1e-6)
    assert set(terms) == {"kd", "ce"}


def test_alpha_zero_is_plain_fine_tuning_without_a_teacher():
    student = torch.tensor([[0.5, -0.5]])
    labels = torch.tensor([1])
    total, terms = distillation_loss(student, None, labels, temperature=2.0, alpha=0.0)
    assert set(terms) == {"ce"}
    assert total.item() == pytest.approx(cross_entropy_loss(student, labels).item())


def test_alpha_one_is_pure_distillation():
    student, teacher = torch.tensor([[0.5, -0.5]]), torch.tensor([[-1.0, 1.0]])
    total, terms = distillation_loss(student, teacher, torch.tensor([0]), temperature=2.0, alpha=1.0)
    assert set(terms) == {"kd"}
    assert total.item() == pytest.approx(kd_kl_loss(student, teacher, 2.0).item())


def test_no_gradient_flows_into_the_teacher():
    student = torch.tensor([[0.1, 0.9]], requires_grad=True)
    teacher = torch.tensor([[1.0, -1.0]], requires_grad=True)
    total, _ = distillation_loss(student, teacher, torch.tensor([0]), temperature=2.0, alpha=0.5)
    total.backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_finite_with_extreme_logits():
    student = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    teacher = torch.tensor([[-1e4, 1e4], [-1e4, 1e4]])
    total, _ = distillation_loss(student, teacher, torch.tensor([0, 1]), temperature=2.0, alpha=0.5)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_finite_in_half_precision(dtype):
    student = torch.tensor([[60000.0, -60000.0], [3.0, -2.0]]).to(dtype).requires_grad_()
    teacher = torch.tensor([[-60000.0, 60000.0], [1.0, 1.0]]).to(dtype)
    total, terms = distillation_loss(student, teacher, torch.tensor([0, 1]), temperature=2.0, alpha=0.5)
    total.backward()
    assert total.dtype == torch.float32  # terms compute in float32 whatever the logits' dtype
    assert torch.isfinite(total) and torch.isfinite(student.grad.float()).all()


def test_weighted_sum():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    assert weighted_sum(terms, {"a": 0.5, "b": 2.0}).item() == pytest.approx(7.0)
