"""Loss terms as small pure functions, and their weighted sum.

Each term maps logits (and targets) to a scalar. The objective of a run is a weighted sum of
terms, so a new distillation method adds a term and a weight, never a branch in the loop.
All terms compute in float32: under fp16/bf16 autocast the logits arrive in half precision, where
softmax over extreme logits over- or underflows.
"""

from __future__ import annotations

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


def cross_entropy_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the student's logits (batch, num_labels) against gold labels (batch,)."""
    return F.cross_entropy(student_logits.float(), labels)


def weighted_sum(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """sum_k weights[k] * terms[k] over the terms present; a term with weight 0 is never computed."""
    return sum(weights[name] * value for name, value in terms.items())


def distillation_weights(alpha: float) -> dict[str, float]:
    """L = alpha * KD + (1 - alpha) * CE; terms whose weight is 0 are left out."""
    weights = {"kd": alpha, "ce": 1.0 - alpha}
    return {name: w for name, w in weights.items() if w > 0}


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(z_s, y).

    Returns the total and each term on its own (for logging). With alpha = 0 the teacher's logits
    may be None: that is plain fine-tuning.
    """
    weights = distillation_weights(alpha)
    terms: dict[str, torch.Tensor] = {}
    if "kd" in weights:
        if teacher_logits is None:
            raise ValueError("alpha > 0 needs the teacher's logits")
        terms["kd"] = kd_kl_loss(student_logits, teacher_logits, temperature)
    if "ce" in weights:
        terms["ce"] = cross_entropy_loss(student_logits, labels)
    return weighted_sum(terms, weights), terms
