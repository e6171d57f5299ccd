"""The loss terms, each declared once: the logit terms and the intermediate-layer terms.

A term is data, as in TextBrewer's intermediate_matches and torchdistill's loss registry.

A logit term (LOGIT_TERMS) compares the student's logits with a target: the teacher's logits or the
gold labels. It says which, the function in losses.py that computes it (one per variant, chosen by its
--<name>_loss flag), its weight (--alpha, 1 - alpha, or a --<name>_weight flag of its own), the task
kind it applies to, and how the printed objective names it. KD, cross-entropy and a score's MSE are
such terms.

An intermediate term (TERMS) says which model outputs it compares (so the student and the teacher
return them), which layers, whether the student's hidden states are first projected to the teacher's
width, the function in losses.py that computes it, and the help text of its weight flag.

Everything else is derived from the declarations: the flags and their checks (config.DistillConfig),
the LossSpec weights and what metrics.json records of them, the objective's terms and its printed form
(objectives.DistillationObjective), whether the teacher is needed, what the models must return, and the
refusals (a BiLSTM has no such outputs; an intermediate term needs the teacher online). Adding a term is a
function in losses.py and one entry here (see docs/architecture.md).

This module imports no torch: the configs are built from it before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HIDDEN_STATES, ATTENTIONS = "hidden_states", "attentions"
# hidden_states[0] is the embedding layer's output and hidden_states[m] layer m's; attentions[m - 1] is layer m's.
FIRST_LAYER_INDEX = {HIDDEN_STATES: 0, ATTENTIONS: -1}


class _Variants:
    """A declared term's variants: the names of its loss functions when it has several (a dict), else none."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.loss) if isinstance(self.loss, dict) else ())


@dataclass(frozen=True)
class Term(_Variants):
    name: str  # in the log and the printed objective; its weight flag is --<name>_weight
    output: str  # HIDDEN_STATES or ATTENTIONS: what the student and the teacher return for it
    layers: str  # "embedding": the embedding outputs; "mapped": each student layer against its teacher layer
    #              (--layer_map), summed as TinyBERT does; "last": the last hidden states
    loss: str | dict[str, str]  # the function in losses.py, or one per variant (the first is the default)
    help: str  # the weight flag's help text
    projected: bool = False  # the student's states go through TinyBERT's W_h when the widths differ
    variant_help: str = ""  # the --<name>_loss flag's help text, for a term with variants
    paper: str = ""
    variants: tuple[str, ...] = field(init=False)

    @property
    def weight_flag(self) -> str:
        return f"{self.name}_weight"

    @property
    def variant_flag(self) -> str | None:
        return f"{self.name}_loss" if self.variants else None

    def function_name(self, variant: str | None) -> str:
        return self.loss[variant or self.variants[0]] if isinstance(self.loss, dict) else self.loss

    def pairs(self, layer_map: list[int]) -> list[tuple[int, int]]:
        """(student index, teacher index) into the outputs the term compares."""
        if self.layers == "embedding":
            return [(0, 0)]
        if self.layers == "last":
            return [(-1, -1)]
        offset = FIRST_LAYER_INDEX[self.output]
        return [(m + offset, g + offset) for m, g in enumerate(layer_map, start=1)]


TERMS = (
    Term("embedding", HIDDEN_STATES, "embedding", "hidden_mse_loss", projected=True,
         help="weight of the embedding-output MSE (default: 0)", paper="TinyBERT (Jiao et al., 2020)"),
    Term("hidden", HIDDEN_STATES, "mapped", "hidden_mse_loss", projected=True,
         help="weight of the hidden-state MSE, summed over mapped layers (default: 0)",
         paper="TinyBERT (Jiao et al., 2020)"),
    Term("attention", ATTENTIONS, "mapped", {"mse": "attention_mse_loss", "kl": "attention_kl_loss"},
         help="weight of the attention-map loss, summed over mapped layers (default: 0)",
         variant_help="mse on attention probabilities (TinyBERT) or KL per query row (MiniLM) (default: %(default)s)",
         paper="TinyBERT (Jiao et al., 2020); MiniLM (Wang et al., 2020) for kl"),
    Term("cos", HIDDEN_STATES, "last", "cosine_hidden_loss", projected=True,
         help="weight of the cosine loss on the last hidden states (DistilBERT's alpha_cos) (default: 0)",
         paper="DistilBERT (Sanh et al., 2019)"),
)
BY_NAME = {term.name: term for term in TERMS}

# What a logit term compares the student's logits with.
TEACHER, GOLD = "teacher", "gold"
# A logit term's weight: --alpha, 1 - alpha, or a --<name>_weight flag of its own (default 0).
ALPHA, ONE_MINUS_ALPHA, OWN_WEIGHT = "alpha", "1 - alpha", "own"
# The task kinds (task.Task.kind) a logit term may be limited to.
CLASSIFICATION, REGRESSION = "classification", "regression"


@dataclass(frozen=True)
class LogitTerm(_Variants):
    name: str  # in the log and metrics.json (train_<name>_loss); a term with its own weight: --<name>_weight
    target: str  # TEACHER (the teacher's logits: the run needs a teacher) or GOLD (the labels)
    loss: str | dict[str, str]  # the function in losses.py, or one per variant (the first is the default);
    #                             it takes (student logits, target) and, if it has that parameter, temperature
    weight: str  # ALPHA, ONE_MINUS_ALPHA or OWN_WEIGHT
    task: str | None = None  # CLASSIFICATION or REGRESSION: the only task kind it applies to; None: both
    label: str = ""  # how the printed objective names it, with {variant} and {temperature} filled in (default: name)
    help: str = ""  # the --<name>_weight flag's help text, for a term with its own weight
    variant_help: str = ""  # the --<name>_loss flag's help text, for a term with variants
    paper: str = ""
    variants: tuple[str, ...] = field(init=False)

    @property
    def weight_flag(self) -> str | None:
        return f"{self.name}_weight" if self.weight == OWN_WEIGHT else None

    @property
    def variant_flag(self) -> str | None:
        return f"{self.name}_loss" if self.variants else None

    def function_name(self, variant: str | None) -> str:
        return self.loss[variant or self.variants[0]] if isinstance(self.loss, dict) else self.loss

    def applies_to(self, task: str) -> bool:
        return self.task in (None, task)

    def describe(self, variant: str | None, temperature: float) -> str:
        """The term as the printed objective names it: kd_kl(T=2), ce."""
        return self.label.format(variant=variant, temperature=temperature) if self.label else self.name


LOGIT_TERMS = (
    LogitTerm("kd", TEACHER, {"kl": "kd_kl_loss", "mse": "kd_mse_loss"}, ALPHA, task=CLASSIFICATION,
              label="kd_{variant}(T={temperature:g})",
              variant_help="kl: T^2 * KL of the softened distributions; mse: mean squared error between the logits "
                           "(Tang et al., 2019) (default: %(default)s)",
              paper="Hinton et al., 2015; Tang et al., 2019 for mse"),
    # A single score has no softmax to soften: KD is the MSE against the teacher's score, whatever --kd_loss says.
    LogitTerm("kd", TEACHER, "kd_mse_loss", ALPHA, task=REGRESSION, label="kd_mse", paper="Tang et al., 2019"),
    LogitTerm("ce", GOLD, "cross_entropy_loss", ONE_MINUS_ALPHA, task=CLASSIFICATION),
    LogitTerm("mse", GOLD, "score_mse_loss", ONE_MINUS_ALPHA, task=REGRESSION),
)


def logit_flags() -> dict[str, LogitTerm]:
    """The flags the logit terms declare (--kd_loss, and any --<name>_weight), in LOGIT_TERMS order, with the
    term that declares each; a name shared by the terms of two task kinds declares its flags once."""
    flags: dict[str, LogitTerm] = {}
    for term in LOGIT_TERMS:
        for name in (term.weight_flag, term.variant_flag):
            if name and name not in flags:
                flags[name] = term
    return flags


def weight_flags(separator: str = ", ", last: str = " or ") -> str:
    """The terms' weight flags for a message: --embedding_weight, --hidden_weight, ... or --cos_weight."""
    flags = [f"--{term.weight_flag}" for term in TERMS]
    return separator.join(flags[:-1]) + last + flags[-1] if len(flags) > 1 else flags[0]
