"""What a training step minimizes, given a batch and the student's logits.

The loop is the same for the teacher and the student; only the objective passed to it differs.
Fine-tuning is distillation with alpha = 0, and then no teacher is needed at all.
"""

from __future__ import annotations

import torch

from .batching import TEACHER
from .losses import distillation_loss


class DistillationObjective:
    """L = alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(z_s, y)."""

    def __init__(self, teacher=None, temperature: float = 1.0, alpha: float = 0.0):
        self.teacher = teacher  # None: the batches carry cached teacher logits (or alpha = 0)
        self.temperature = temperature
        self.alpha = alpha
        if teacher is not None:
            teacher.eval()  # dropout off: the teacher's targets must not be noisy

    def __call__(self, batch: dict, student_logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        teacher_logits = None
        if self.alpha > 0:
            teacher_logits = batch["teacher_logits"] if "teacher_logits" in batch else self.teacher_logits(batch)
        return distillation_loss(student_logits, teacher_logits, batch["labels"], self.temperature, self.alpha)

    def teacher_logits(self, batch: dict) -> torch.Tensor:
        """Run the teacher on this batch (--teacher_logits online)."""
        if self.teacher is None:
            raise ValueError("the batch has no cached teacher logits and there is no teacher to run")
        with torch.inference_mode():
            logits = self.teacher(**batch[TEACHER]).logits  # (bs, num_labels)
        # Inference tensors cannot be saved for backward; a clone taken outside inference_mode can.
        return logits.clone()
