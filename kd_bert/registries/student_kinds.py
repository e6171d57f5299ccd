"""The kinds of student a distillation builds, each declared once.

A kind says how it is chosen (a --student_init value, or a --student_model value for a model built
from nothing), where it starts, what it has (transformer layers that intermediate terms can match, a
head --head can replace) and what it needs of the teacher; its build function lives in students.py.
The --student_init and --student_model help texts, the checks of plan_distillation (which flags a kind
excludes), the teacher's use (loaded only to build the student, or not at all), the model sources
checked before loading and the log's description come from these declarations. Adding a kind is a
build function and one entry here (see docs/architecture.md).

This module imports no torch: the configs are built from it before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass

STUDENT_INIT, STUDENT_MODEL = "student_init", "student_model"  # the flags a kind is chosen by


@dataclass(frozen=True)
class StudentKind:
    name: str  # the value of the flag that chooses it
    chosen_by: str  # STUDENT_INIT or STUDENT_MODEL
    help: str  # what it is, in the choosing flag's help
    build: str  # its function in students.py: (distill, head, teacher, label_names, eager_attention) -> (model, tokenizer)
    starts_from: str | None  # the flag naming the checkpoint it starts from; None: built from nothing
    describe: str  # how the log names its start; {source} is the checkpoint
    label: str = ""  # how messages name it ("BiLSTM")
    has_layers: bool = True  # transformer layers, with hidden states and attention maps to match
    takes_head: bool = False  # --head puts a new head on it
    copies_teacher: bool = False  # built from the teacher's weights
    takes_layers: bool = False  # --student_layers says which layers it keeps
    uses_teacher_tokenizer: bool = False  # reads the teacher's tokenizer unless --student_tokenizer names one
    requires: str = ""  # a module its build imports that requirements.txt does not install
    install: str = ""  # the command that installs it

    def source(self, distill) -> str:
        """The checkpoint it starts from (or its name, for a kind built from nothing)."""
        return getattr(distill, self.starts_from) if self.starts_from else self.name


STUDENT_KINDS = (
    StudentKind("pretrained", STUDENT_INIT, "start from --student_model", "pretrained_student",
                starts_from="student_model", describe="{source}", takes_head=True),
    StudentKind("teacher_layers", STUDENT_INIT, "build the student from the teacher's embeddings and "
                "--student_layers of its layers (DistilBERT)", "teacher_layers_student", starts_from="teacher_model",
                describe="layers of {source}", copies_teacher=True, takes_layers=True),
    StudentKind("first_layers", STUDENT_INIT, "the first --student_layers layers of --student_model",
                "first_layers_student", starts_from="student_model", describe="the first layers of {source}",
                takes_head=True, takes_layers=True),
    StudentKind("static", STUDENT_INIT, "static token embeddings distilled from --student_model, a sentence "
                "transformer, by model2vec, mean-pooled under a ReLU head", "static_student", starts_from="student_model",
                describe="static embeddings of {source}", label="static-embedding", has_layers=False,
                requires="model2vec.distill",
                # --no-deps: model2vec's distill extra pins transformers<5.4, and its other needs are installed.
                install="pip install --no-deps model2vec==0.10.0 skeletoken==0.6.1"),
    StudentKind("bilstm", STUDENT_MODEL, "a BiLSTM student", "bilstm_student", starts_from=None,
                describe="a new BiLSTM", label="BiLSTM", has_layers=False, uses_teacher_tokenizer=True),
)
KINDS = {kind.name: kind for kind in STUDENT_KINDS}
INIT_CHOICES = tuple(kind.name for kind in STUDENT_KINDS if kind.chosen_by == STUDENT_INIT)
BUILT_FROM_NOTHING = tuple(kind.name for kind in STUDENT_KINDS if kind.chosen_by == STUDENT_MODEL)


def init_help() -> str:
    return "; ".join(f"{kind.name}: {kind.help}" for kind in STUDENT_KINDS if kind.chosen_by == STUDENT_INIT)


def model_help() -> str:
    return " or ".join(f"'{kind.name}' for {kind.help}" for kind in STUDENT_KINDS if kind.chosen_by == STUDENT_MODEL)


def kind_of(distill) -> StudentKind:
    """The kind a DistillConfig asks for: a --student_model that names a kind built from nothing, else
    --student_init's."""
    return kind_named(distill.student_model, distill.student_init)


def kind_named(student_model: str | None, student_init: str | None) -> StudentKind:
    """The same, from the two flags' values (as training_args.json records them)."""
    if student_model in BUILT_FROM_NOTHING:
        return KINDS[student_model]
    return KINDS.get(student_init or INIT_CHOICES[0], KINDS[INIT_CHOICES[0]])
