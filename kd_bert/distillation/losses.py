"""Loss terms as small pure functions, and their weighted sum.

Each term maps logits, hidden states or attention maps (and targets) to a scalar. The objective of a run is a weighted sum of
terms, so a new distillation method adds a term and a weight, never a branch in the loop. terms.py declares
which function each term computes with, by name (it imports no torch); `named` resolves that name.
All terms compute in float32: under fp16/bf16 autocast the logits arrive in half precision, where
softmax over extreme logits over- or underflows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F


def kd_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the batch.

    student_logits, teacher_logits: (batch, num_labels). The T^2 factor (Hinton et al., 2015) keeps
    the gradient's scale independent of T, so alpha weighs this term against cross-entropy the same
    way at any temperature. "batchmean" is the true KL per example; "mean" would also divide by
    the number of labels.
    """
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    # The teacher is a fixed target: detach, so no gradient can reach it even if it was not run
    # under inference_mode.
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / t, dim=-1)
    # log_target=True takes log-probabilities for the target: exact where p_teacher underflows to 0.
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * (t * t)


def kd_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the logits (Tang et al., 2019): (batch, num_labels) each, averaged
    over every element. No temperature: logits are compared before any softmax."""
    return F.mse_loss(student_logits.float(), teacher_logits.detach().float())


# An example with no gold label (an augmented copy): the gold terms skip it. One marker for both tasks:
# -100 in a long tensor of class ids, -100.0 in a float tensor of regression scores (exact in float32
# and bf16; data.py refuses a real score of -100).
IGNORE_LABEL = -100


def cross_entropy_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the student's logits (batch, num_labels) against gold labels (batch,),
    over the labeled examples only; 0 for a batch with none."""
    if not bool((labels != IGNORE_LABEL).any()):
        return student_logits.float().sum() * 0.0  # keeps the graph, adds nothing
    return F.cross_entropy(student_logits.float(), labels, ignore_index=IGNORE_LABEL)


def score_mse_loss(student_scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Regression's gold term: mean of (z_s - y)^2 of the student's scores (batch, 1) against gold
    scores (batch,) (float), over the labeled examples only (label != IGNORE_LABEL); 0 for a batch with none."""
    scores = student_scores.float().squeeze(-1)  # (batch,)
    labeled = labels != IGNORE_LABEL
    if not bool(labeled.any()):
        return scores.sum() * 0.0  # keeps the graph, adds nothing
    return F.mse_loss(scores[labeled], labels[labeled].float())


def _token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values (batch, seq) over real tokens (mask 1); padding positions do not count."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def hidden_mse_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """TinyBERT's hidden-state (and embedding-output) loss: the squared error per element, averaged
    over the real tokens and the hidden size. student_hidden is already projected to the teacher's
    width; both (batch, seq, hidden), mask (batch, seq)."""
    squared = (student_hidden.float() - teacher_hidden.detach().float()).pow(2).mean(dim=-1)  # (batch, seq)
    return _token_mean(squared, mask)


def cosine_hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DistilBERT's cosine loss: 1 - cos(student, teacher) per real token, averaged; pulls the
    student's hidden states to point the teacher's way. (batch, seq, hidden) each, mask (batch, seq)."""
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.detach().float(), dim=-1)  # (batch, seq)
    return _token_mean(1.0 - cos, mask)


def _head_match(student_att: torch.Tensor, teacher_att: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention maps (batch, heads, seq, seq); with different head counts both are averaged over heads."""
    if student_att.shape[1] != teacher_att.shape[1]:
        return student_att.mean(dim=1, keepdim=True), teacher_att.mean(dim=1, keepdim=True)
    return student_att, teacher_att


def attention_mse_loss(student_att: torch.Tensor, teacher_att: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """TinyBERT's attention loss on attention probabilities: squared error per entry, averaged over
    heads and keys and over the real query tokens. (batch, heads, seq, seq) each, mask (batch, seq)."""
    s, t = _head_match(student_att.float(), teacher_att.detach().float())
    squared = (s - t).pow(2).mean(dim=-1).mean(dim=1)  # (batch, seq): per query token
    return _token_mean(squared, mask)


def attention_kl_loss(student_att: torch.Tensor, teacher_att: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's attention loss: KL(teacher row || student row) of each query token's attention
    distribution, averaged over heads and real query tokens. (batch, heads, seq, seq), mask (batch, seq)."""
    s, t = _head_match(student_att.float(), teacher_att.detach().float())
    eps = 1e-12  # padding keys have probability 0 in both: 0 * log(0 / 0) counts as 0
    kl = (t * (torch.log(t + eps) - torch.log(s + eps))).sum(dim=-1).mean(dim=1)  # (batch, seq)
    return _token_mean(kl, mask)


def weighted_sum(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """sum_k weights[k] * terms[k] over the terms present; a term with weight 0 is never computed."""
    return sum(weights[name] * value for name, value in terms.items())


def named(name: str) -> Callable[..., torch.Tensor]:
    """The loss function of this module that a declaration in terms.py names; only a function defined here
    resolves, never an imported name such as F."""
    function = globals().get(name)
    if not (inspect.isfunction(function) and function.__module__ == __name__):
        raise LookupError(f"distillation/losses.py defines no loss function named {name!r}")
    return function
