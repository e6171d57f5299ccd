"""The intermediate-layer loss terms, each declared once.

A term is data, as in TextBrewer's intermediate_matches and torchdistill's loss registry: what it is
called, which model outputs it compares (so the student and the teacher return them), which layers,
whether the student's hidden states are first projected to the teacher's width, the function in
losses.py that computes it, and the help text of its weight flag. Everything else is derived from
TERMS: the --<name>_weight flags and their checks (config.DistillConfig), the LossSpec weights and
what metrics.json records of them, the objective's terms and its printed form
(objectives.DistillationObjective), what the models must return, and the refusals (a BiLSTM has no
such outputs; such a term needs the teacher online). Adding a term is a function in losses.py and one
entry here (see docs/architecture.md).

This module imports no torch: the configs are built from it before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HIDDEN_STATES, ATTENTIONS = "hidden_states", "attentions"
# hidden_states[0] is the embedding layer's output and hidden_states[m] layer m's; attentions[m - 1] is layer m's.
FIRST_LAYER_INDEX = {HIDDEN_STATES: 0, ATTENTIONS: -1}


@dataclass(frozen=True)
class Term:
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.loss) if isinstance(self.loss, dict) else ())

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


def weight_flags(separator: str = ", ", last: str = " or ") -> str:
    """The terms' weight flags for a message: --embedding_weight, --hidden_weight, ... or --cos_weight."""
    flags = [f"--{term.weight_flag}" for term in TERMS]
    return separator.join(flags[:-1]) + last + flags[-1] if len(flags) > 1 else flags[0]
