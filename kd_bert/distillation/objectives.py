"""What a training step minimizes, given a batch and the model's outputs.

The loop is the same for the teacher and the student; only the objective passed to it differs.
Fine-tuning is distillation with alpha = 0, and then no teacher is needed at all. Every method is a
weighted term declared in terms.py: the logit terms (KD by KL or MSE, and cross-entropy, or MSE on a
score), and the intermediate-layer terms of TinyBERT (embedding outputs, hidden states, attention maps)
and DistilBERT (cosine of the last hidden states). A term with weight 0 is never computed, and the model
and teacher return hidden states or attention maps only when a term needs them.
"""

from __future__ import annotations

import inspect
from dataclasses import InitVar, dataclass, field

import torch
from torch import nn

from ..data.batching import MODEL, TEACHER
from . import losses
from .losses import weighted_sum
from ..registries.terms import (
    ALPHA,
    ATTENTIONS,
    BY_NAME,
    CLASSIFICATION,
    HIDDEN_STATES,
    LOGIT_TERMS,
    ONE_MINUS_ALPHA,
    REGRESSION,
    TERMS,
    LogitTerm,
    Term,
)
from ..registries.terms import TEACHER as TEACHER_TARGET


@dataclass
class LossSpec:
    """The weights and settings of every term declared in terms.py. `logits` False leaves out the logit
    terms (KD and cross-entropy): TinyBERT's intermediate stage. `task`: the task's kind (Task.kind,
    terms.CLASSIFICATION or REGRESSION), which picks the logit terms declared for it (for regression, a
    model with one output, KD and the gold term are both mean squared errors). `weights` holds the weights of the terms that have their own (every intermediate term, and a
    logit term with a --<name>_weight flag) and `variants` every term's variant, by term name; `kd_loss`,
    when given, is the kd term's variant (--kd_loss)."""

    temperature: float = 1.0
    alpha: float = 0.0
    kd_loss: InitVar[str | None] = None
    logits: bool = True
    weights: dict[str, float] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    layer_map: list[int] = field(default_factory=list)  # teacher layer (1-based) for each student layer
    task: str = CLASSIFICATION

    def __post_init__(self, kd_loss: str | None) -> None:
        if kd_loss is not None:
            self.variants = {**self.variants, "kd": kd_loss}

    @classmethod
    def from_config(cls, distill) -> "LossSpec":
        """A DistillConfig's terms and weights; --stage keeps only the logit or the intermediate terms."""
        intermediate = distill.stage != "prediction"
        weights = {term.name: getattr(distill, term.weight_flag) if intermediate else 0.0 for term in TERMS}
        weights.update({term.name: getattr(distill, term.weight_flag) for term in LOGIT_TERMS if term.weight_flag})
        return cls(
            temperature=distill.temperature, alpha=distill.alpha, logits=distill.stage != "intermediate",
            weights=weights, layer_map=list(distill.layer_map or []),
            variants={term.name: getattr(distill, term.variant_flag) for term in (*LOGIT_TERMS, *TERMS)
                      if term.variant_flag},
        )

    def variant(self, term: Term | LogitTerm) -> str | None:
        return self.variants.get(term.name, term.variants[0]) if term.variants else None

    def logit_terms(self) -> list[tuple[LogitTerm, float]]:
        """The logit terms this run computes, in LOGIT_TERMS order, with their weights: none without
        `logits`, and only those declared for this task."""
        if not self.logits:
            return []
        own = {ALPHA: self.alpha, ONE_MINUS_ALPHA: 1.0 - self.alpha}
        weighted = [(term, own.get(term.weight, self.weights.get(term.name, 0.0))) for term in LOGIT_TERMS
                    if term.applies_to(self.task)]
        return [(term, weight) for term, weight in weighted if weight > 0]

    def intermediate_weights(self) -> dict[str, float]:
        """The intermediate terms this run computes, in TERMS order, with their weights."""
        return {term.name: self.weights[term.name] for term in TERMS if self.weights.get(term.name, 0.0) > 0}

    def active_terms(self) -> list[Term]:
        return [BY_NAME[name] for name in self.intermediate_weights()]

    @property
    def needs_teacher(self) -> bool:
        return bool(self.intermediate_weights()) or any(term.target == TEACHER_TARGET
                                                        for term, _ in self.logit_terms())

    @property
    def needs_hidden_states(self) -> bool:
        return any(term.output == HIDDEN_STATES for term in self.active_terms())

    @property
    def needs_attentions(self) -> bool:
        return any(term.output == ATTENTIONS for term in self.active_terms())

    def to_json(self) -> dict:
        """The settings as metrics.json records them: each term's weight and variant by its flag's name."""
        logit_flags = {}
        for term in LOGIT_TERMS:
            if term.weight_flag:
                logit_flags.setdefault(term.weight_flag, self.weights.get(term.name, 0.0))
            if term.variant_flag:
                logit_flags.setdefault(term.variant_flag, self.variant(term))
        return {"temperature": self.temperature, "alpha": self.alpha, **logit_flags, "logits": self.logits,
                **{term.weight_flag: self.weights.get(term.name, 0.0) for term in TERMS},
                **{term.variant_flag: self.variants.get(term.name, term.variants[0]) for term in TERMS
                   if term.variants},
                "layer_map": list(self.layer_map), "regression": self.task == REGRESSION}  # the recorded form


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """TinyBERT's uniform map g(m) = m * N / M: student layer m (1-based) learns from teacher layer
    g(m), so the last student layer always learns from the last teacher layer."""
    return [round(m * teacher_layers / student_layers) for m in range(1, student_layers + 1)]


class Objective(nn.Module):
    """The contract between the training loop and what it minimizes.

    forward(batch, outputs) returns (the loss to minimize, its named terms for logging), given a
    batch and the model's outputs. `model_outputs` names what the model must return besides logits
    ("hidden_states", "attentions"). Parameters of the objective's own modules (a projection to the
    teacher's width) are trained with the model; the loop prepares its child modules as it prepares
    the model.
    """

    model_outputs: tuple[str, ...] = ()

    def forward(self, batch: dict, outputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


class DistillationObjective(Objective):
    """sum_k w_k * term_k over the terms of a LossSpec; see the module docstring."""

    def __init__(self, spec: LossSpec | None = None, teacher=None, projection: nn.Module | None = None):
        super().__init__()
        self.spec = spec or LossSpec()
        # Maps student hidden states to the teacher's width (TinyBERT's W_h), trained with the
        # student and never saved with it. None when the widths match.
        self.projection = projection
        # The teacher is run, never trained: kept out of this module's children, so its weights stay
        # out of the optimizer and train() leaves it in eval mode (dropout off: its targets must not
        # be noisy). None: the batches carry cached teacher logits, or no term needs a teacher.
        object.__setattr__(self, "teacher", teacher)
        if teacher is not None:
            teacher.eval()
        self.model_outputs = tuple(name for name, needed in (("hidden_states", self.spec.needs_hidden_states),
                                                             ("attentions", self.spec.needs_attentions)) if needed)

    def __str__(self) -> str:
        """The active terms as a weighted sum, e.g. `0.5 * kd_kl(T=2) + 0.5 * ce + 1 * hidden`, or
        `0.5 * kd_mse + 0.5 * mse` for a regression task: the training log states the objective a run
        optimized."""
        spec = self.spec
        parts = [f"{w:g} * {term.describe(spec.variant(term), spec.temperature)}" for term, w in spec.logit_terms()]
        parts += [f"{w:g} * {name}" for name, w in spec.intermediate_weights().items()]
        return " + ".join(parts) or "0"

    def forward(self, batch: dict, outputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        spec = self.spec
        # Cached logits serve when the teacher's logits are all a term needs (--teacher_logits cached).
        cached = "teacher_logits" in batch and not self.model_outputs
        teacher_out = self.run_teacher(batch) if spec.needs_teacher and not cached else None
        teacher_logits = batch["teacher_logits"] if cached else teacher_out["logits"] if teacher_out else None
        weighted = spec.logit_terms()
        if weighted:
            terms = self.logit_terms(outputs.logits, teacher_logits, batch["labels"])
            total = weighted_sum(terms, {term.name: w for term, w in weighted})
        else:
            total, terms = outputs.logits.float().sum() * 0.0, {}
        weights = spec.intermediate_weights()
        if weights:
            inner = self.intermediate_terms(outputs, teacher_out, batch[MODEL]["attention_mask"])
            total = total + weighted_sum(inner, weights)
            terms.update(inner)
        return total, terms

    def logit_terms(self, logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                    labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each logit term (registries/terms.py) of the student's logits (bs, num_labels) against its target:
        the teacher's logits (bs, num_labels) or the gold labels (bs,)."""
        terms = {}
        for term, _ in self.spec.logit_terms():
            loss = losses.named(term.function_name(self.spec.variant(term)))
            if term.target == TEACHER_TARGET and teacher_logits is None:
                raise ValueError(f"the {term.name} term needs the teacher's logits")
            target = teacher_logits if term.target == TEACHER_TARGET else labels
            # The temperature goes to the functions that soften the logits by it (kd_kl_loss).
            softened = "temperature" in inspect.signature(loss).parameters
            terms[term.name] = loss(logits, target, self.spec.temperature) if softened else loss(logits, target)
        return terms

    def intermediate_terms(self, student, teacher: dict, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each intermediate term (registries/terms.py), summed over the layers it pairs, as TinyBERT does."""
        terms = {}
        for term in self.spec.active_terms():
            loss = losses.named(term.function_name(self.spec.variant(term)))
            project = self.projection if term.projected and self.projection is not None else (lambda h: h)
            student_out, teacher_out = getattr(student, term.output), teacher[term.output]
            terms[term.name] = sum(loss(project(student_out[s]), teacher_out[t], mask)
                                   for s, t in term.pairs(self.spec.layer_map))
        return terms

    def run_teacher(self, batch: dict) -> dict:
        """Run the teacher on this batch (online): its logits, and hidden states and attention maps
        when a term needs them."""
        if self.teacher is None:
            raise ValueError("the batch has no cached teacher logits and there is no teacher to run")
        with torch.inference_mode():
            out = self.teacher(**batch[TEACHER], **{f"output_{name}": True for name in self.model_outputs})
        # Inference tensors cannot be saved for backward; clones taken outside inference_mode can.
        result = {"logits": out.logits.clone()}  # (bs, num_labels)
        if self.spec.needs_hidden_states:
            result["hidden_states"] = [h.clone() for h in out.hidden_states]  # (bs, seq, hidden) each
        if self.spec.needs_attentions:
            result["attentions"] = [a.clone() for a in out.attentions]  # (bs, heads, seq, seq) each
        return result
