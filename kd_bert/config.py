"""The settings of a run, one dataclass per concern, each validated when it is built.

The entry scripts' flags are generated from these fields (kd_bert.cli), so a flag, its default
and its help text are written once, here; the Python API takes the same objects:

    data = DataConfig(data_path="./data/sst2", max_length=64)
    train = TrainConfig(output_dir="./models", num_train_epochs=2)
    train_teacher("bert-large-uncased", data, train)

A config that cannot work raises UserError when it is constructed, with the one-line message the
scripts print. Checks that need a model or the data happen later, in the jobs; the one exception is an
ONNX teacher, known by its model.onnx file, refused here when a flag needs more of it than its logits. This
module imports no torch, so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import numbers
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import UserError
from .registries import student_kinds
from .registries.formats import EXTENSIONS as DATA_EXTENSIONS
from .registries.precisions import MIXED_PRECISION_CHOICES, check_choice
from .registries.terms import HIDDEN_STATES, LOGIT_TERMS, TERMS, logit_flags

# Defaults for distillation (docs/methods.md, "The loss"). T = 2 softens a confident teacher's
# near one-hot outputs enough to carry its ranking of the wrong classes without flattening two
# classes toward uniform; alpha = 0.5 weighs that signal equally with the gold labels.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5
TEACHER_LEARNING_RATE, STUDENT_LEARNING_RATE = 2e-5, 5e-5
ONNX_INT8, TORCH_INT8 = "onnx-int8", "dynamic-int8"  # --quantize: the ONNX Runtime route, and the removed torch one
ONNX_FILE = "model.onnx"  # the graph of an ONNX model folder (deploy/onnx.py), which marks the folder as one
TRACKERS = ("tensorboard", "wandb", "mlflow")  # Accelerate's names for them, and their packages' names
# --max_eval_samples draws with this seed in every script (evaluate.py has no --seed), so a model is
# validated while it trains on the examples evaluate.py later scores.
EVAL_SAMPLE_SEED = 42

DATA, TRAINING = "data", "training"
LOGITS, INTERMEDIATE = "distillation: logits", "distillation: intermediate layers (TinyBERT, DistilBERT)"
STUDENT, TRANSFER = "distillation: the student", "distillation: data and comparison"


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def trackers(report_to: list[str] | None) -> list[str]:
    """Accelerate's trackers for --report_to (TrainConfig has checked their packages are installed);
    by default TensorBoard when it is installed."""
    if report_to is None:
        return ["tensorboard"] if tensorboard_available() else []
    return [name for name in dict.fromkeys(report_to) if name != "none"]


def flag(default, help: str, group: str | None = None, aliases: tuple[str, ...] = (), last: bool = False,
         **argparse_kwargs):
    """A setting that is also a command-line flag --<field name>: its help text, its argparse group
    (None: the script's top level; `last`: listed after every group) and any other add_argument keyword."""
    metadata = {"help": help, "group": group, "aliases": aliases, "last": last, "argparse": argparse_kwargs}
    return field(default=default, metadata=metadata)


def comma_list(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError("give at least two comma-separated names, e.g. negative,positive")
    return names


def int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 2,4,6 (got {short_repr(value)})") \
            from None


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _at_least_one(config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        _need(value is None or value >= 1, f"--{name} must be at least 1 (got {value})")


class Default(float):
    """A number left at its default, which the run can tell from the same number given: evaluate.py
    carves the validation split its model was trained with unless --validation_split is given."""


def is_default(value) -> bool:
    return isinstance(value, Default)


def short_repr(value, limit: int = 80) -> str:
    """A value as a message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Flags:
    """What every config shares: building from parsed flags, and the flags it stands for.

    Each field is converted when the config is built, the way the script converts its flag's text
    (see _converted): the API may pass "3" or 3, a Path or a str, and a value no flag could take is
    refused with the message the script gives. Then the config's own checks (_check) run."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if "help" in f.metadata:
                setattr(self, f.name, _converted(f, getattr(self, f.name)))
        self._check()

    def _check(self) -> None:
        """The config's own checks, on converted values."""

    @classmethod
    def from_flags(cls, namespace: argparse.Namespace, **overrides):
        values = {f.name: getattr(namespace, f.name) for f in fields(cls) if f.name in vars(namespace)}
        return cls(**{**values, **overrides})

    def to_flags(self) -> dict:
        """The settings by flag name, as recorded in training_args.json."""
        return {f.name: getattr(self, f.name) for f in fields(self) if "help" in f.metadata}


def _converted(f, value):
    """A field's value as its flag would give it: text through the flag's type (as the command line's
    text is), a list for a flag that takes several values, a path as text; anything else that is not
    of the flag's kind is refused. Numbers must be finite: inf and nan pass every range check."""
    name, meta = f"--{f.name}", f.metadata["argparse"]
    if value is None:
        _need("None" in str(f.type), f"{name} needs a value (got None)")
        return None
    convert = meta.get("type")
    if meta.get("action") in ("store_true", argparse.BooleanOptionalAction):
        _need(isinstance(value, bool), f"{name} must be true or false (got {short_repr(value)})")
        return value
    if meta.get("nargs") == "+" or meta.get("action") == "append":  # --report_to a b, --text x --text y
        items = [value] if isinstance(value, (str, os.PathLike)) else value
        _need(isinstance(items, (list, tuple)), f"{name} must be a list of values (got {short_repr(value)})")
        return [_one(name, item, convert, meta.get("choices")) for item in items]
    if convert in (comma_list, int_list):
        if isinstance(value, str):
            return _one(name, value, convert, None)
        _need(isinstance(value, (list, tuple)),
              f"{name} must be a list or comma-separated text (got {short_repr(value)})")
        item_type = int if convert is int_list else str
        return [_one(name, item, item_type, None) for item in value]
    return _one(name, value, convert, meta.get("choices"))


def _one(name: str, value, convert, choices):
    """One value of a flag of type `convert` (None: text)."""
    if convert is int:
        if isinstance(value, str):
            value = _parsed(name, value, int, "a whole number")
        integral = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
        _need(integral and not isinstance(value, bool), f"{name} must be a whole number (got {short_repr(value)})")
        value = int(value)
    elif convert is float:
        if isinstance(value, str):
            value = _parsed(name, value, float, "a number")
        _need(isinstance(value, numbers.Real) and not isinstance(value, bool),
              f"{name} must be a number (got {short_repr(value)})")
        value = value if isinstance(value, (int, float)) else float(value)
        _need(math.isfinite(value), f"{name} must be a finite number (got {value})")
    elif convert is None or convert is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = str(value)  # --checkpointing_steps 500, --student_layers 6
        _need(isinstance(value, str), f"{name} must be text (got {short_repr(value)})")
    else:  # a parsing function of the flag's own (comma_list, int_list)
        _need(isinstance(value, str), f"{name} must be text (got {short_repr(value)})")
        try:
            value = convert(value)
        except argparse.ArgumentTypeError as exc:
            raise UserError(f"{name}: {exc}") from None
    if choices is not None:
        _need(value in choices, f"{name} must be one of {', '.join(map(str, choices))} (got {short_repr(value)})")
    return value


def _parsed(name: str, text: str, convert, expected: str):
    try:
        return convert(text.strip())
    except ValueError:
        raise UserError(f"{name} must be {expected} (got {short_repr(text)})") from None


@dataclass
class DataConfig(Flags):
    """Where the examples come from and how they become model inputs."""

    data_path: str = flag("./data/sst2", "save_to_disk folder, folder of train/dev/test files "
                          f"({'/'.join(DATA_EXTENSIONS)}), one such file, or a hub dataset name "
                          "(default: %(default)s)", DATA)
    text_column: str | None = flag(None, "column holding the text (default: 'sentence', else detected)", DATA)
    text_pair_column: str | None = flag(None, "column holding the second text of a sentence-pair task (default: "
                                        "detected from pairs such as sentence1/sentence2, premise/hypothesis, "
                                        "question/sentence; none otherwise)", DATA)
    label_column: str | None = flag(None, "column holding the label (default: 'label', else detected)", DATA)
    # Default: evaluate.py tells the flag left out (its model's own fraction applies) from a value given.
    validation_split: float = flag(Default(0.1), "when the data has a train split and no validation split, hold out "
                                   "this fraction of train (stratified, the same examples in every script); 0 turns "
                                   "it off (default: %(default)s)", DATA, type=float)
    label_names: list[str] | None = flag(None, "comma-separated label names in id order, e.g. negative,positive "
                                         "(default: from the data: ClassLabel names, labels.txt, or sorted string "
                                         "labels)", DATA, type=comma_list)
    max_length: int = flag(128, "truncate inputs to this many tokens; at most the models' positions (default: "
                           "%(default)s)", DATA, type=int)
    max_eval_samples: int | None = flag(None, "score N evaluation examples drawn at random with a fixed seed "
                                        f"({EVAL_SAMPLE_SEED}), stratified by label, the same ones in every script",
                                        DATA, type=int)
    on_bad_rows: str = flag("error", "a row with a missing or extra field, an empty text or no label: error stops "
                            "the run and names the lines; warn drops such rows and lists them; skip drops them; "
                            "either way the count is reported and kept in metrics.json (default: %(default)s)", DATA,
                            choices=("error", "warn", "skip"))

    def _check(self) -> None:
        _at_least_one(self, "max_eval_samples")
        _need(0 <= self.validation_split < 1,
              f"--validation_split must be in [0, 1) (got {self.validation_split}); try 0.1")
        _need(self.max_length >= 8, f"--max_length must be at least 8 tokens (got {self.max_length})")


@dataclass
class TrainConfig(Flags):
    """The training loop, where its model is written, and how the run is checkpointed."""

    output_dir: str = flag("./models", "where the model folder is written (default: %(default)s)", TRAINING,
                           aliases=("--output_air",))
    num_train_epochs: int = flag(3, "default: %(default)s", TRAINING, type=int)
    batch_size: int = flag(32, "training batch size per device (default: %(default)s)", TRAINING, type=int)
    eval_batch_size: int = flag(128, "default: %(default)s", TRAINING, type=int)
    learning_rate: float = flag(TEACHER_LEARNING_RATE, "AdamW peak learning rate (default: %(default)s)", TRAINING,
                                type=float)
    weight_decay: float = flag(0.01, "default: %(default)s", TRAINING, type=float)
    warmup_ratio: float = flag(0.1, "fraction of updates with linear warmup, then linear decay to 0 "
                               "(default: %(default)s)", TRAINING, type=float)
    max_grad_norm: float = flag(1.0, "gradient clipping; 0 turns it off (default: %(default)s)", TRAINING, type=float)
    gradient_accumulation_steps: int = flag(1, "default: %(default)s", TRAINING, type=int)
    seed: int = flag(42, "0 to 4294967295 (default: %(default)s)", TRAINING, type=int)
    max_train_samples: int | None = flag(None, "train on N examples drawn at random with --seed, stratified by "
                                         "label (every class at least once when N allows), the same ones in every "
                                         "script", TRAINING, type=int)
    selection_split: float = flag(0.0, "hold out this fraction of the training examples (stratified, drawn with a "
                                  "fixed seed: the same ones in every run) as a selection split that picks the kept "
                                  "epoch; the kept model is then scored once on the validation split, which picked "
                                  "nothing (default: 0, the validation split picks; sweep.py: 0.1, where it also "
                                  "compares the trials)", TRAINING, type=float)
    group_by_length: bool = flag(True, "batch training sentences of similar length together, so batches carry "
                                 "little padding (default: on; --no-group_by_length for random batches)", TRAINING,
                                 action=argparse.BooleanOptionalAction)
    overwrite_output_dir: bool = flag(False, "replace a model already in <output_dir>/<role> (default: refuse, so "
                                      "finished work is never lost)", TRAINING, action="store_true")
    checkpointing_steps: str | None = flag(None, "save the full training state every N batches, or 'epoch' after "
                                           "every epoch, to <output_dir>/checkpoints/<role> (default: never)",
                                           TRAINING)
    save_total_limit: int | None = flag(None, "keep only the newest N checkpoints (default: all)", TRAINING, type=int)
    resume_from_checkpoint: str | None = flag(None, "continue a run from a checkpoint folder, or 'latest' (the "
                                              "default when given without a value)", TRAINING, nargs="?",
                                              const="latest")
    head: str = flag("cls", "classification head on a pretrained encoder: cls = the stock [CLS] head; mean_pool = "
                     "mean over real tokens, then Dropout-Linear-GELU-Dropout-Linear (default: %(default)s)",
                     TRAINING, choices=("cls", "mean_pool"))
    eval_steps: int | None = flag(None, "also evaluate every N training batches and keep the best model so far, "
                                  "for runs where one epoch is long (default: only after each epoch)", TRAINING,
                                  type=int)
    freeze_embeddings: bool = flag(False, "keep the word-embedding table fixed: no gradient and no optimizer update "
                                   "for its rows, about 20%% less time per step on a small BERT (default: train it)",
                                   TRAINING, action="store_true")
    metric_for_best_model: str = flag("accuracy", "validation metric that picks the epoch saved; pearson, spearman "
                                      "and mse are for a regression task, where accuracy means pearson "
                                      "(default: %(default)s)", TRAINING,
                                      choices=("accuracy", "f1", "precision", "recall", "loss", "pearson", "spearman",
                                               "mse"))
    report_to: list[str] | None = flag(None, "log training curves through Accelerate's trackers, one or more of: "
                                       "tensorboard (to <output_dir>/runs/<role>), wandb, mlflow; none turns logging "
                                       "off (default: tensorboard when it is installed, else none)", TRAINING,
                                       nargs="+", choices=(*TRACKERS, "none"))
    mixed_precision: str = flag("auto", "auto: bf16 on a CPU with native bf16 (avx512_bf16, AMX) or a GPU that has "
                                "it, fp16 on an older GPU, no (full precision) otherwise; no, fp16 or bf16 force one "
                                "(default: %(default)s)", last=True, choices=MIXED_PRECISION_CHOICES)
    # Not a flag: TinyBERT's intermediate stage keeps the last epoch, its head having learned nothing yet.
    select_best: bool = True

    def _check(self) -> None:
        _at_least_one(self, "num_train_epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                      "max_train_samples", "eval_steps")
        value = self.checkpointing_steps
        _need(value is None or value == "epoch" or (value.isdigit() and int(value) >= 1),
              f"--checkpointing_steps must be a number of batches (at least 1) or 'epoch' (got {value})")
        _need(self.save_total_limit is None or self.save_total_limit >= 1,
              f"--save_total_limit must be at least 1 (got {self.save_total_limit})")
        _need(0 <= self.selection_split < 1,
              f"--selection_split must be in [0, 1) (got {self.selection_split}); try 0.1")
        _need(self.learning_rate > 0, f"--learning_rate must be positive (got {self.learning_rate}); try 2e-5")
        _need(self.weight_decay >= 0, f"--weight_decay must be 0 or more (got {self.weight_decay})")
        _need(0 <= self.warmup_ratio < 1, f"--warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        _need(self.max_grad_norm >= 0, f"--max_grad_norm must be 0 (off) or positive (got {self.max_grad_norm})")
        # NumPy's and Python's generators, seeded by set_seed, take 0 to 2**32 - 1.
        _need(0 <= self.seed < 2**32, f"--seed must be between 0 and {2**32 - 1} (got {self.seed})")
        check_choice(self.mixed_precision)
        if self.report_to is not None:
            _need(self.report_to == ["none"] or "none" not in self.report_to,
                  f"--report_to none turns logging off; give it alone (got {' '.join(self.report_to)})")
            # Accelerate would skip a tracker it cannot import, and the run would go unlogged.
            missing = [name for name in TRACKERS if name in self.report_to and importlib.util.find_spec(name) is None]
            _need(not missing, f"--report_to {' '.join(missing)} needs its package: pip install {' '.join(missing)}")


def with_term_flags(cls):
    """Add the flags the loss terms declare in registries/terms.py, where the class says so: the logit terms'
    (--kd_loss, and a --<name>_weight for a term with a weight of its own) after alpha, and the intermediate
    terms' (a --<name>_weight for every term, and --<name>_loss for a term with variants) after cache_dir. A
    new term gets its flags, their checks and their place in --help from its declaration alone."""
    annotations, added = {}, {}

    def add(name: str, kind: str, value) -> None:
        annotations[name] = kind
        added[name] = value

    for name, kind in cls.__annotations__.items():
        annotations[name] = kind
        if name == "alpha":
            for flag_name, term in logit_flags().items():
                if flag_name == term.weight_flag:
                    add(flag_name, "float", flag(0.0, term.help, LOGITS, type=float))
                else:
                    add(flag_name, "str", flag(term.variants[0], term.variant_help, LOGITS, choices=term.variants))
        if name == "cache_dir":
            for term in TERMS:
                add(term.weight_flag, "float", flag(0.0, term.help, INTERMEDIATE, type=float))
                if term.variant_flag:
                    add(term.variant_flag, "str", flag(term.variants[0], term.variant_help, INTERMEDIATE,
                                                       choices=term.variants))
    cls.__annotations__ = annotations
    for name, value in added.items():
        setattr(cls, name, value)
    return cls


def weight_flag_names() -> list[str]:
    """Every --<name>_weight flag the terms declare: the logit terms' own weights, then the intermediate terms'."""
    return [term.weight_flag for term in LOGIT_TERMS if term.weight_flag] + [term.weight_flag for term in TERMS]


@dataclass
@with_term_flags
class DistillConfig(Flags):
    """The teacher, the student, the loss terms and their weights, and the transfer set."""

    teacher_model: str = flag("./models/teacher", "fine-tuned teacher folder (or hub id) (default: %(default)s)")
    student_model: str = flag("bert-base-uncased", f"hub id or local model folder the student starts from, or "
                              f"{student_kinds.model_help()} (default: %(default)s)")
    temperature: float = flag(DEFAULT_TEMPERATURE, "softmax temperature T of the KL term (default: %(default)s)",
                              LOGITS, type=float)
    alpha: float = flag(DEFAULT_ALPHA, "weight of the KD term; 1 - alpha weighs cross-entropy. 0 = plain "
                        "fine-tuning, 1 = pure distillation (default: %(default)s)", LOGITS, type=float)
    # Here come the logit terms' flags declared in registries/terms.py (--kd_loss): see with_term_flags.
    teacher_logits: str | None = flag(None, "cached: run the teacher once over the training set and reuse its "
                                      "logits from disk; online: run it at every step (default: cached when the "
                                      "loss needs only the teacher's logits, online when it needs hidden states or "
                                      "attention maps)", LOGITS, choices=("cached", "online"))
    cache_dir: str | None = flag(None, "where cached teacher logits are kept, shared by every run that uses the same "
                                 "folder (default: $KD_BERT_CACHE, else $XDG_CACHE_HOME/kd-bert, else "
                                 "~/.cache/kd-bert)", LOGITS)
    # Here come the intermediate terms' flags, one --<name>_weight per term declared in
    # registries/terms.py (and --<name>_loss for a term with variants): see with_term_flags.
    layer_map: list[int] | None = flag(None, "1-based teacher layer for each student layer, e.g. 2,4,6 (default: "
                                       "uniform, m * N / M)", INTERMEDIATE, type=int_list)
    stage: str = flag("both", "TinyBERT's stages: intermediate = only the intermediate-layer terms (the last epoch "
                      "is kept); prediction = only the logit terms; both = all at once (default: %(default)s)",
                      INTERMEDIATE, choices=("both", "intermediate", "prediction"))
    student_init: str = flag(student_kinds.INIT_CHOICES[0], f"{student_kinds.init_help()} (default: %(default)s)",
                             STUDENT, choices=student_kinds.INIT_CHOICES)
    student_layers: str | None = flag(None, "with --student_init teacher_layers: a count spread evenly (6) or "
                                      "0-based teacher layer indices (0,2,4); with first_layers: how many of "
                                      "--student_model's first layers to keep (3) (default: half the teacher's layers, or of "
                                      "--student_model's for first_layers)",
                                      STUDENT)
    student_tokenizer: str | None = flag(None, "tokenizer for a BiLSTM student (--student_model bilstm) "
                                         "(default: the teacher's)", STUDENT)
    bilstm_embedding_dim: int = flag(300, "BiLSTM student: word embedding size (default: %(default)s)", STUDENT,
                                     type=int)
    bilstm_hidden_size: int = flag(300, "BiLSTM student: LSTM size per direction (default: %(default)s)", STUDENT,
                                   type=int)
    bilstm_layers: int = flag(1, "BiLSTM student: stacked LSTM layers (default: %(default)s)", STUDENT, type=int)
    bilstm_mlp_size: int = flag(400, "BiLSTM student: hidden units of the ReLU head (default: %(default)s)", STUDENT,
                                type=int)
    static_pca_dims: int = flag(256, "static student (--student_init static): embedding width, by PCA of "
                                "--student_model's (at most its hidden size) (default: %(default)s)", STUDENT, type=int)
    static_head_size: int = flag(256, "static student: hidden units of the ReLU head (default: %(default)s)", STUDENT,
                                 type=int)
    augment: int = flag(0, "add N perturbed copies of each training sentence (masking, word swap and deletion, "
                        "n-gram sampling), labeled by the teacher's soft labels only (default: 0)", TRANSFER, type=int)
    augment_replace: float = flag(0.0, "with --augment: the chance that a copy swaps a word for one of its nearest "
                                  "neighbours in the teacher's word-embedding table (TinyBERT's word replacement, "
                                  "with the teacher's own table in place of GloVe); 0.4 is TinyBERT's (default: 0, "
                                  "none)", TRANSFER, type=float)
    transfer_data: str | None = flag(None, "unlabeled texts to distill on as well, labeled by the teacher alone (its "
                                     "logits cached as for the training set; cross-entropy skips them): any form "
                                     "--data_path takes, or a .txt file with one text per line. With --alpha 1 the "
                                     "data needs no labeled train split; validation still uses its labeled dev split",
                                     TRANSFER)
    compare_no_kd: bool = flag(False, "also train the same student from the same start without the teacher "
                               "(alpha 0) into <output_dir>/student_no_kd, and print both results side by side",
                               TRANSFER, action="store_true")

    def _check(self) -> None:
        _need(self.temperature > 0, f"--temperature must be positive (got {self.temperature}); try 2")
        _need(0 <= self.alpha <= 1,
              f"--alpha must be in [0, 1] (got {self.alpha}); 0 = fine-tuning, 1 = pure distillation")
        for name in (*weight_flag_names(), "augment"):
            _need(getattr(self, name) >= 0, f"--{name} must be 0 or more (got {getattr(self, name)})")
        _need(0 <= self.augment_replace <= 1, f"--augment_replace must be in [0, 1] (got {self.augment_replace})")
        _need(not self.augment_replace or self.augment, "--augment_replace replaces words in the --augment copies; "
              "add --augment N")
        for name in ("bilstm_embedding_dim", "bilstm_hidden_size", "bilstm_layers", "bilstm_mlp_size",
                     "static_pca_dims", "static_head_size"):
            _need(getattr(self, name) >= 1, f"--{name} must be at least 1 (got {getattr(self, name)})")
        self._check_onnx_teacher()

    def _check_onnx_teacher(self) -> None:
        """An ONNX teacher gives its logits and nothing else: a flag that needs its hidden states, attention
        maps, layers or embedding table is refused here, before the data and the models load (the run
        would otherwise fail at its first step)."""
        if not (Path(self.teacher_model).expanduser() / ONNX_FILE).is_file():
            return
        needs = [f"--{term.weight_flag} {getattr(self, term.weight_flag):g} needs its "
                 f"{'hidden states' if term.output == HIDDEN_STATES else 'attention maps'}"
                 for term in TERMS if getattr(self, term.weight_flag) > 0 and self.stage != "prediction"]
        if student_kinds.kind_of(self).copies_teacher:
            needs.append(f"--student_init {self.student_init} copies its layers")
        if self.augment_replace:
            needs.append(f"--augment_replace {self.augment_replace:g} needs its word-embedding table")
        _need(not needs, f"--teacher_model {self.teacher_model} is an ONNX model, which gives logits only, and "
              f"{needs[0] if needs else ''}; use the PyTorch teacher it was exported from")

    @property
    def student_kind(self) -> str:
        """The name of the kind of student asked for (registries/student_kinds.py): "pretrained", "teacher_layers"
        or "bilstm"."""
        return student_kinds.kind_of(self).name


@dataclass
class EvalConfig(Flags):
    """What evaluate.py scores, and what it writes."""

    model: str = flag("./models/student", "model folder (or hub id) (default: %(default)s)")
    teacher: str | None = flag(None, "also score this teacher on the same split and compare: accuracy, F1, "
                               "agreement, KL(teacher || student), calibration, size, latency, throughput (for a "
                               "regression model: Pearson, Spearman, MSE and the MSE between their scores)")
    latency_samples: int = flag(100, "measure batch-1 latency (p50/p95) over this many examples; 0 skips it "
                                "(default: %(default)s)", type=int)
    split: str = flag("validation", "split to score when the data has several; dev = validation "
                      "(default: %(default)s)")
    batch_size: int = flag(64, "evaluation batch size (default: %(default)s)", type=int)
    output: str | None = flag(None, "write all metrics to this JSON file")
    report_dir: str | None = flag(None, "write metrics.json, per_class.csv, confusion_matrix.png, reliability.png "
                                  "and report.md here (for a regression model: metrics.json, scores.png and "
                                  "report.md)")
    export_onnx: str | None = flag(None, "write the model as ONNX (dynamic batch and sequence axes) with its config "
                                   "and tokenizer to this folder, and check ONNX Runtime's logits against "
                                   "PyTorch's on the split; evaluate.py --model scores the folder (needs "
                                   "onnxruntime and onnx)")
    quantize: str | None = flag(None, f"{ONNX_INT8}: also score an int8 version of the model made with ONNX "
                                "Runtime (fused attention, LayerNorm and GELU, then dynamic int8 quantization), "
                                "next to the model (needs onnxruntime and onnx)", metavar=ONNX_INT8)
    save_quantized: str | None = flag(None, "with --quantize: write the int8 ONNX model to this folder, which "
                                      "evaluate.py --model scores")
    text: list[str] | None = flag(None, "classify this text and print its top-k labels, or its predicted score for "
                                  "a regression model (repeatable); no data set is scored", action="append")
    input_file: str | None = flag(None, "classify each non-blank line of this file, as --text")
    top_k: int = flag(3, "labels shown per text (default: %(default)s)", type=int)
    predictions_file: str | None = flag(None, "write index<TAB>prediction here (default on an unlabeled split: "
                                        "<model>/predictions_<split>.tsv)")
    mixed_precision: str = flag("auto", TrainConfig.__dataclass_fields__["mixed_precision"].metadata["help"],
                                last=True, choices=MIXED_PRECISION_CHOICES)

    def _check(self) -> None:
        _at_least_one(self, "batch_size")
        _need(self.top_k >= 1, f"--top_k must be at least 1 (got {self.top_k})")
        _need(self.latency_samples >= 0, f"--latency_samples must be 0 (skip) or more (got {self.latency_samples})")
        _need(self.quantize != TORCH_INT8, f"--quantize {TORCH_INT8} (PyTorch eager-mode quantization, deprecated "
              f"upstream) is gone; use --quantize {ONNX_INT8}, closer to fp32's accuracy at lower latency "
              f"(docs/deploy-onnx.md)")
        _need(self.quantize in (None, ONNX_INT8), f"--quantize must be {ONNX_INT8} (got {self.quantize})")
        _need(not (self.save_quantized and not self.quantize),
              f"--save_quantized writes the model --quantize makes; add --quantize {ONNX_INT8}")
        check_choice(self.mixed_precision)


# What sweep.py searches when --search is not given: the three settings every distillation run must
# choose, over the ranges the literature uses (Hinton et al.; Tang et al.; the DistilBERT and TinyBERT
# recipes use T 1 to 8, alpha 0.1 to 1, learning rates 1e-5 to 3e-4 for small students).
LATENCY, OBJECTIVES = "latency", ("accuracy", "latency")  # sweep.py --objectives: one, or both


def objectives_of(text: str) -> tuple[str, ...]:
    """--objectives: accuracy, or accuracy,latency."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    _need(names in (("accuracy",), OBJECTIVES),
          f"--objectives {text}: give accuracy (one objective: the selection split's score) or accuracy,latency "
          f"(two: that score and the batch-1 latency, for the accuracy-speed frontier)")
    return names


DEFAULT_SEARCH = ("alpha=0.1:1.0", "temperature=1:8", "learning_rate=1e-5:3e-4:log")


@dataclass
class SweepConfig(Flags):
    """What sweep.py searches and how: the space, the number of trials, pruning and where the study lives."""

    trials: int = flag(20, "trials in the study, counted over every run and machine that works on it: a resumed or "
                       "second sweep runs only those still missing (default: %(default)s)", type=int)
    search: list[str] | None = flag(None, "the space, one NAME=SPEC per setting: LOW:HIGH (a number), LOW:HIGH:log, "
                                    "LOW:HIGH:int, or A,B,C (choices); NAME is any distilled-bert.py flag, e.g. "
                                    "alpha=0.1:1.0 temperature=1:8 augment=0,1,2 (default: "
                                    f"{' '.join(DEFAULT_SEARCH)}; a regression task leaves out temperature, "
                                    "which its KD term does not read)", nargs="+")
    pruner: str | None = flag(None, "median: stop a trial whose --eval_steps evaluation is worse than the median of "
                              "the earlier trials' at the same step (after the first 4 trials); none: run every trial "
                              "to the end (default: median; none with --objectives accuracy,latency, whose trials "
                              "Optuna cannot prune)", choices=("median", "none"))
    objectives: str = flag("accuracy", "what the study optimizes: accuracy (the selection split's score) or "
                           "accuracy,latency (that score and the batch-1 latency: each trial's student is timed in "
                           "PyTorch and as ONNX int8, and the accuracy-speed front goes to "
                           "<output_dir>/sweep/frontier.md and frontier.png; search the student's kind and size with "
                           "--search student=...) (default: %(default)s)")
    max_drop: float | None = flag(None, "with --objectives accuracy,latency: keep in <output_dir>/student the fastest "
                                  "student of the front whose validation accuracy is at most this many points below "
                                  "the teacher's, e.g. 1.0 (default: the trial with the best selection score)",
                                  type=float)
    timing_samples: int = flag(100, "with --objectives accuracy,latency: how many sentences of the data (the first of "
                               "the validation split) each student is timed on, at batch 1 and at batch 64 "
                               "(default: %(default)s)", type=int)
    timing_rounds: int = flag(5, "with --objectives accuracy,latency: rounds in which the front's students and the "
                              "teacher are timed again together, in turns, when the sweep ends (default: %(default)s)",
                              type=int)
    storage: str | None = flag(None, "the study's database, any URL Optuna takes (sqlite:///FILE, "
                               "postgresql://..., mysql://...), so that several machines can work on one study "
                               "(default: sqlite in <output_dir>/sweep/study.db)")
    study_name: str = flag("kd-bert-sweep", "the study's name in --storage (default: %(default)s)")

    def _check(self) -> None:
        _at_least_one(self, "trials", "timing_samples", "timing_rounds")
        _need(bool(self.study_name.strip()), "--study_name must not be empty")
        objectives_of(self.objectives)
        _need(not (self.frontier and self.pruner == "median"),
              "--pruner median: Optuna prunes no trial of a study with two objectives; leave --pruner out (or pass "
              "--pruner none) with --objectives accuracy,latency")
        _need(self.max_drop is None or self.frontier,
              "--max_drop picks the fastest student of the accuracy-speed front; pass --objectives accuracy,latency")
        _need(self.max_drop is None or self.max_drop >= 0,
              f"--max_drop is a drop in points below the teacher, 0 or more (got {self.max_drop})")

    @property
    def frontier(self) -> bool:
        """Whether the study has the latency objective: a multi-objective study and its frontier."""
        return LATENCY in objectives_of(self.objectives)

    @property
    def pruning(self) -> bool:
        return self.pruner == "median" or (self.pruner is None and not self.frontier)

    @property
    def space(self) -> list[str]:
        return list(self.search or DEFAULT_SEARCH)
