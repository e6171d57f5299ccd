"""Properties that must hold for any input: the loss terms, and the data loaders on arbitrary column
names, label spellings and text."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kd_bert.distillation.losses import (
    cosine_hidden_loss,
    cross_entropy_loss,
    hidden_mse_loss,
    kd_kl_loss,
)

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
