"""From distilled-bert.py's flags to a distillation run: which loss terms, which student, and
whether the teacher must be loaded and run at every step. Flag combinations that cannot work fail
here, before any model is loaded."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from torch import nn

from .batching import same_tokenizer
from .errors import UserError
from .objectives import LossSpec, uniform_layer_map
from .students import BILSTM, bilstm_classifier, from_teacher_layers, num_layers_of, parse_layers


def loss_spec(args: argparse.Namespace) -> LossSpec:
    """The terms and weights of this run; --stage keeps only the logit or the intermediate terms."""
    intermediate = args.stage != "prediction"
    spec = LossSpec(
        temperature=args.temperature, alpha=args.alpha, kd_loss=args.kd_loss, logits=args.stage != "intermediate",
        embedding_weight=args.embedding_weight if intermediate else 0.0,
        hidden_weight=args.hidden_weight if intermediate else 0.0,
        attention_weight=args.attention_weight if intermediate else 0.0,
        cos_weight=args.cos_weight if intermediate else 0.0,
        attention_loss=args.attention_loss, layer_map=list(args.layer_map or []),
    )
    if args.stage == "intermediate" and not spec.intermediate_weights():
        raise UserError("--stage intermediate trains only intermediate-layer terms, and all their weights are 0; "
                        "set --hidden_weight, --attention_weight, --embedding_weight or --cos_weight")
    return spec


@dataclass
class StudentPlan:
    kind: str  # "pretrained", "teacher_layers" or "bilstm"
    load_teacher: bool
    teacher_logits: str  # "cached" or "online"
    source: str

    @classmethod
    def from_args(cls, args: argparse.Namespace, spec: LossSpec) -> "StudentPlan":
        kind = BILSTM if args.student_model == BILSTM else args.student_init
        intermediate = bool(spec.intermediate_weights())
        if kind == BILSTM and args.student_init == "teacher_layers":
            raise UserError("--student_model bilstm and --student_init teacher_layers exclude each other: "
                            "a BiLSTM has no transformer layers to copy")
        if kind == BILSTM and intermediate:
            raise UserError("a BiLSTM student has no hidden states or attention maps to match the teacher's; "
                            "use logit terms only (--embedding/--hidden/--attention/--cos_weight 0)")
        if args.student_layers and kind != "teacher_layers":
            raise UserError("--student_layers picks the teacher's layers for --student_init teacher_layers; add that flag")
        if args.augment and not spec.needs_teacher:
            raise UserError("--augment adds sentences that only the teacher can label; use --alpha above 0 "
                            "(or an intermediate-layer term)")
        if args.head != "cls" and kind != "pretrained":
            raise UserError(f"--head {args.head} puts a new head on a pretrained encoder; a {kind} student has its own")
        teacher_logits = args.teacher_logits or ("online" if intermediate else "cached")
        if teacher_logits == "cached" and intermediate:
            raise UserError("intermediate-layer terms need the teacher's hidden states at every step; "
                            "use --teacher_logits online (or leave it unset)")
        load_teacher = spec.needs_teacher or kind == "teacher_layers" or (kind == BILSTM and not args.student_tokenizer)
        source = {"pretrained": args.student_model, "teacher_layers": args.teacher_model, BILSTM: BILSTM}[kind]
        return cls(kind, load_teacher, teacher_logits, source)

    def describe(self) -> str:
        return {"pretrained": self.source, "teacher_layers": f"layers of {self.source}", BILSTM: "a new BiLSTM"}[self.kind]


def build_student(args, plan: StudentPlan, spec: LossSpec, teacher, teacher_tokenizer, label_names: list[str]):
    """(student model, its tokenizer), freshly built: call it again for an identical second start."""
    from .models import load_classifier, load_tokenizer

    if plan.kind == "teacher_layers":
        total = num_layers_of(teacher.config)
        indices = parse_layers(args.student_layers or str(max(1, total // 2)), total)
        print(f"student: the teacher's embeddings, head and layers {indices} of 0..{total - 1}")
        return from_teacher_layers(teacher, indices), teacher_tokenizer
    if plan.kind == BILSTM:
        tokenizer = load_tokenizer(args.student_tokenizer, "--student_tokenizer") if args.student_tokenizer \
            else teacher_tokenizer
        model = bilstm_classifier(tokenizer, label_names, args.bilstm_embedding_dim, args.bilstm_hidden_size,
                                  args.bilstm_layers, args.bilstm_mlp_size)
        return model, tokenizer
    check_student_labels(args.student_model, label_names,
                         f"the teacher {args.teacher_model}" if teacher is not None else "the data")
    tokenizer = load_tokenizer(args.student_model, "--student_model")
    model = load_classifier(args.student_model, "--student_model", label_names, head=args.head,
                            eager_attention=spec.needs_attentions)
    return model, tokenizer


def check_student_labels(student: str, label_names: list[str], declared_by: str) -> None:
    """A student that is already a classifier (a TinyBERT stage-1 student, a model fine-tuned
    before) keeps its head only if its labels are the teacher's, in the same order: a head trained
    for another order would be trained against the teacher's swapped classes without any error."""
    from .data import check_label_names
    from .models import label_names_of, load_config

    config = load_config(student, "--student_model")
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
    if is_classifier:
        check_label_names(label_names, label_names_of(config), f"the student {student}", declared_by=declared_by)


def check_intermediate(spec: LossSpec, student, tokenizer, teacher, teacher_tokenizer) -> nn.Module | None:
    """Checks what intermediate-layer terms need, fills in the layer map, and returns the projection
    from the student's hidden width to the teacher's (None when they match or no term needs it)."""
    if not same_tokenizer(tokenizer, teacher_tokenizer):
        raise UserError("intermediate-layer terms compare teacher and student token by token, so both need the same "
                        "tokenizer; this student has its own. Use logit terms only, or a student with the teacher's "
                        "tokenizer (--student_init teacher_layers)")
    student_layers, teacher_layers = num_layers_of(student.config), num_layers_of(teacher.config)
    if not spec.layer_map:
        spec.layer_map = uniform_layer_map(student_layers, teacher_layers)
    if len(spec.layer_map) != student_layers or not all(1 <= g <= teacher_layers for g in spec.layer_map):
        raise UserError(f"--layer_map {','.join(map(str, spec.layer_map))}: give one teacher layer (1 to "
                        f"{teacher_layers}) for each of the student's {student_layers} layers")
    student_width, teacher_width = student.config.hidden_size, teacher.config.hidden_size
    if spec.needs_hidden_states and student_width != teacher_width:
        return nn.Linear(student_width, teacher_width)  # TinyBERT's W_h, shared by every layer
    return None


def kd_vs_no_kd(kd: dict, no_kd: dict) -> dict:
    """The two runs of --compare_no_kd: validation metrics of each kept epoch and the differences."""
    rows = {}
    for name in ("accuracy", "f1"):
        with_kd = (kd.get("validation") or {}).get(name)
        without = (no_kd.get("validation") or {}).get(name)
        if with_kd is not None and without is not None:
            rows[name] = {"kd": with_kd, "no_kd": without, "difference": with_kd - without}
    rows["train_seconds"] = {"kd": kd["total_train_seconds"], "no_kd": no_kd["total_train_seconds"],
                             "difference": kd["total_train_seconds"] - no_kd["total_train_seconds"]}
    return rows


def format_kd_vs_no_kd(rows: dict) -> str:
    lines = ["", "same student, same start, with and without the teacher (validation split):",
             f"{'':<16}{'with KD':>12}{'without KD':>12}{'difference':>12}"]
    for name, row in rows.items():
        fmt = (lambda v: f"{v:.1f} s") if name == "train_seconds" else (lambda v: f"{100 * v:.2f}")
        diff = f"{row['difference']:+.1f} s" if name == "train_seconds" else f"{100 * row['difference']:+.2f}"
        lines.append(f"{name:<16}{fmt(row['kd']):>12}{fmt(row['no_kd']):>12}{diff:>12}")
    return "\n".join(lines)
