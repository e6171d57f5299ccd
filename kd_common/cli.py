"""Command-line flags shared by the entry scripts, their checks, and turning errors into one line.

Each flag is defined once here; a script adds the groups it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from .errors import UserError
from .precision import MIXED_PRECISION_CHOICES
from .training import TrainConfig

DEFAULT_DATA_PATH = "./data/sst2"
DEFAULT_OUTPUT_DIR = "./models"
# Defaults for distillation (see README, "The loss"). T = 2 softens a confident teacher's
# near one-hot outputs enough to carry its ranking of the wrong classes without flattening two
# classes toward uniform; alpha = 0.5 weighs that signal equally with the gold labels.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5


def add_data_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--data_path", default=DEFAULT_DATA_PATH,
                   help="save_to_disk folder, folder of train/dev/test files (.tsv/.csv/.json/.jsonl/.parquet), "
                        "one such file, or a hub dataset name (default: %(default)s)")
    g.add_argument("--text_column", default=None, help="column holding the text (default: 'sentence', else detected)")
    g.add_argument("--text_pair_column", default=None,
                   help="column holding the second text of a sentence-pair task (default: detected from pairs such as "
                        "sentence1/sentence2, premise/hypothesis, question/sentence; none otherwise)")
    g.add_argument("--label_column", default=None, help="column holding the label (default: 'label', else detected)")
    g.add_argument("--validation_split", type=float, default=0.1,
                   help="when the data has a train split and no validation split, hold out this fraction of train "
                        "(stratified, the same examples in every script); 0 turns it off (default: %(default)s)")
    g.add_argument("--label_names", default=None, type=_comma_list,
                   help="comma-separated label names in id order, e.g. negative,positive "
                        "(default: from the data: ClassLabel names, labels.txt, or sorted string labels)")
    g.add_argument("--max_length", type=int, default=128, help="truncate inputs to this many tokens (default: %(default)s)")
    g.add_argument("--max_eval_samples", type=int, default=None, help="use only the first N evaluation examples")


def add_training_args(parser: argparse.ArgumentParser, learning_rate: float) -> None:
    d = TrainConfig()
    g = parser.add_argument_group("training")
    g.add_argument("--output_dir", "--output_air", dest="output_dir", default=DEFAULT_OUTPUT_DIR,
                   help="where the model folder is written (default: %(default)s)")
    g.add_argument("--num_train_epochs", type=int, default=d.num_train_epochs, help="default: %(default)s")
    g.add_argument("--batch_size", type=int, default=d.batch_size, help="training batch size per device (default: %(default)s)")
    g.add_argument("--eval_batch_size", type=int, default=d.eval_batch_size, help="default: %(default)s")
    g.add_argument("--learning_rate", type=float, default=learning_rate, help="AdamW peak learning rate (default: %(default)s)")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay, help="default: %(default)s")
    g.add_argument("--warmup_ratio", type=float, default=d.warmup_ratio,
                   help="fraction of updates with linear warmup, then linear decay to 0 (default: %(default)s)")
    g.add_argument("--max_grad_norm", type=float, default=d.max_grad_norm, help="gradient clipping; 0 turns it off (default: %(default)s)")
    g.add_argument("--gradient_accumulation_steps", type=int, default=d.gradient_accumulation_steps, help="default: %(default)s")
    g.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    g.add_argument("--max_train_samples", type=int, default=None, help="use only the first N training examples")
    g.add_argument("--group_by_length", action=argparse.BooleanOptionalAction, default=d.group_by_length,
                   help="batch training sentences of similar length together, so batches carry little padding "
                        "(default: on; --no-group_by_length for random batches)")
    g.add_argument("--overwrite_output_dir", action="store_true",
                   help="replace a model already in <output_dir>/<role> (default: refuse, so finished work is never lost)")
    g.add_argument("--checkpointing_steps", default=None,
                   help="save the full training state every N batches, or 'epoch' after every epoch, to "
                        "<output_dir>/checkpoints/<role> (default: never)")
    g.add_argument("--save_total_limit", type=int, default=None,
                   help="keep only the newest N checkpoints (default: all)")
    g.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None,
                   help="continue a run from a checkpoint folder, or 'latest' (the default when given without a value)")
    g.add_argument("--head", choices=("cls", "mean_pool"), default="cls",
                   help="classification head on a pretrained encoder: cls = the stock [CLS] head; mean_pool = mean "
                        "over real tokens, then Dropout-Linear-GELU-Dropout-Linear (default: %(default)s)")
    g.add_argument("--eval_steps", type=int, default=None,
                   help="also evaluate every N training batches and keep the best model so far, for runs where one "
                        "epoch is long (default: only after each epoch)")
    g.add_argument("--freeze_embeddings", action="store_true",
                   help="keep the word-embedding table fixed: no gradient and no optimizer update for its rows, "
                        "about 20%% less time per step on a small BERT (default: train it)")
    g.add_argument("--metric_for_best_model", default=d.metric_for_best_model,
                   choices=("accuracy", "f1", "precision", "recall", "loss"),
                   help="validation metric that picks the epoch saved (default: %(default)s)")


def add_precision_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mixed_precision", default="auto", choices=MIXED_PRECISION_CHOICES,
                        help="auto: bf16 on a CPU with native bf16 (avx512_bf16, AMX) or a GPU that has it, fp16 on "
                             "an older GPU, no (full precision) otherwise; no, fp16 or bf16 force one "
                             "(default: %(default)s)")


def add_distillation_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("distillation: logits")
    g.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                   help="softmax temperature T of the KL term (default: %(default)s)")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="weight of the KD term; 1 - alpha weighs cross-entropy. 0 = plain fine-tuning, "
                        "1 = pure distillation (default: %(default)s)")
    g.add_argument("--kd_loss", choices=("kl", "mse"), default="kl",
                   help="kl: T^2 * KL of the softened distributions; mse: mean squared error between the logits "
                        "(Tang et al., 2019) (default: %(default)s)")
    g.add_argument("--teacher_logits", choices=("cached", "online"), default=None,
                   help="cached: run the teacher once over the training set and reuse its logits from disk; "
                        "online: run it at every step (default: cached when the loss needs only the teacher's "
                        "logits, online when it needs hidden states or attention maps)")
    g.add_argument("--cache_dir", default=None,
                   help="where cached teacher logits are kept, shared by every run that uses the same folder "
                        "(default: $KD_BERT_CACHE, else $XDG_CACHE_HOME/kd-bert, else ~/.cache/kd-bert)")
    g = parser.add_argument_group("distillation: intermediate layers (TinyBERT, DistilBERT)")
    g.add_argument("--embedding_weight", type=float, default=0.0, help="weight of the embedding-output MSE (default: 0)")
    g.add_argument("--hidden_weight", type=float, default=0.0,
                   help="weight of the hidden-state MSE, summed over mapped layers (default: 0)")
    g.add_argument("--attention_weight", type=float, default=0.0,
                   help="weight of the attention-map loss, summed over mapped layers (default: 0)")
    g.add_argument("--attention_loss", choices=("mse", "kl"), default="mse",
                   help="mse on attention probabilities (TinyBERT) or KL per query row (MiniLM) (default: %(default)s)")
    g.add_argument("--cos_weight", type=float, default=0.0,
                   help="weight of the cosine loss on the last hidden states (DistilBERT's alpha_cos) (default: 0)")
    g.add_argument("--layer_map", default=None, type=_int_list,
                   help="1-based teacher layer for each student layer, e.g. 2,4,6 (default: uniform, m * N / M)")
    g.add_argument("--stage", choices=("both", "intermediate", "prediction"), default="both",
                   help="TinyBERT's stages: intermediate = only the intermediate-layer terms (the last epoch is kept); "
                        "prediction = only the logit terms; both = all at once (default: %(default)s)")
    g = parser.add_argument_group("distillation: the student")
    g.add_argument("--student_init", choices=("pretrained", "teacher_layers"), default="pretrained",
                   help="pretrained: start from --student_model; teacher_layers: build the student from the "
                        "teacher's embeddings and --student_layers of its layers (DistilBERT) (default: %(default)s)")
    g.add_argument("--student_layers", default=None,
                   help="with --student_init teacher_layers: a count spread evenly (6) or 0-based teacher layer "
                        "indices (0,2,4) (default: half the teacher's layers)")
    g.add_argument("--student_tokenizer", default=None,
                   help="tokenizer for a BiLSTM student (--student_model bilstm) (default: the teacher's)")
    g.add_argument("--bilstm_embedding_dim", type=int, default=300, help="BiLSTM student: word embedding size (default: %(default)s)")
    g.add_argument("--bilstm_hidden_size", type=int, default=300, help="BiLSTM student: LSTM size per direction (default: %(default)s)")
    g.add_argument("--bilstm_layers", type=int, default=1, help="BiLSTM student: stacked LSTM layers (default: %(default)s)")
    g.add_argument("--bilstm_mlp_size", type=int, default=400, help="BiLSTM student: hidden units of the ReLU head (default: %(default)s)")
    g = parser.add_argument_group("distillation: data and comparison")
    g.add_argument("--augment", type=int, default=0,
                   help="add N perturbed copies of each training sentence (masking, word swap and deletion, n-gram "
                        "sampling), labeled by the teacher's soft labels only (default: 0)")
    g.add_argument("--compare_no_kd", action="store_true",
                   help="also train the same student from the same start without the teacher (alpha 0) into "
                        "<output_dir>/student_no_kd, and print both results side by side")


def add_debug_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{name: getattr(args, name) for name in TrainConfig.__dataclass_fields__ if hasattr(args, name)})


def validate(args: argparse.Namespace) -> None:
    """Flag values that make no sense fail before anything is loaded."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise UserError(message)

    positive_ints = ("num_train_epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                     "max_train_samples", "max_eval_samples", "eval_steps")
    for name in positive_ints:
        value = getattr(args, name, None)
        need(value is None or value >= 1, f"--{name} must be at least 1 (got {value})")
    if getattr(args, "checkpointing_steps", None) is not None:
        value = args.checkpointing_steps
        need(value == "epoch" or (value.isdigit() and int(value) >= 1),
             f"--checkpointing_steps must be a number of batches (at least 1) or 'epoch' (got {value})")
    if getattr(args, "save_total_limit", None) is not None:
        need(args.save_total_limit >= 1, f"--save_total_limit must be at least 1 (got {args.save_total_limit})")
    if hasattr(args, "validation_split"):
        need(0 <= args.validation_split < 1, f"--validation_split must be in [0, 1) (got {args.validation_split}); try 0.1")
    if hasattr(args, "top_k"):
        need(args.top_k >= 1, f"--top_k must be at least 1 (got {args.top_k})")
    if hasattr(args, "latency_samples"):
        need(args.latency_samples >= 0, f"--latency_samples must be 0 (skip) or more (got {args.latency_samples})")
    if hasattr(args, "max_length"):
        need(args.max_length >= 8, f"--max_length must be at least 8 tokens (got {args.max_length})")
    if hasattr(args, "learning_rate"):
        need(args.learning_rate > 0, f"--learning_rate must be positive (got {args.learning_rate}); try 2e-5")
        need(args.weight_decay >= 0, f"--weight_decay must be 0 or more (got {args.weight_decay})")
        need(0 <= args.warmup_ratio < 1, f"--warmup_ratio must be in [0, 1) (got {args.warmup_ratio})")
        need(args.max_grad_norm >= 0, f"--max_grad_norm must be 0 (off) or positive (got {args.max_grad_norm})")
    if hasattr(args, "temperature"):
        need(args.temperature > 0, f"--temperature must be positive (got {args.temperature}); try 2")
        need(0 <= args.alpha <= 1, f"--alpha must be in [0, 1] (got {args.alpha}); 0 = fine-tuning, 1 = pure distillation")
        for name in ("embedding_weight", "hidden_weight", "attention_weight", "cos_weight", "augment"):
            need(getattr(args, name) >= 0, f"--{name} must be 0 or more (got {getattr(args, name)})")
        for name in ("bilstm_embedding_dim", "bilstm_hidden_size", "bilstm_layers", "bilstm_mlp_size"):
            need(getattr(args, name) >= 1, f"--{name} must be at least 1 (got {getattr(args, name)})")


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser, argv=None) -> None:
    """Parse, check and run; a UserError becomes `error: ...` on stderr and exit status 2."""
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        validate(args)
        main(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if args.debug or not _is_cuda_oom(exc):
            raise
        batch = getattr(args, "batch_size", 32)
        print(
            f"error: CUDA ran out of memory; try --batch_size {max(1, batch // 2)} "
            f"--gradient_accumulation_steps {2 * getattr(args, 'gradient_accumulation_steps', 1)} "
            f"(same effective batch), or a shorter --max_length",
            file=sys.stderr,
        )
        sys.exit(2)


def _is_cuda_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 2,4,6 (got {value!r})") from None


def _comma_list(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError("give at least two comma-separated names, e.g. negative,positive")
    return names


def _quiet_libraries() -> None:
    # Load reports and per-file progress bars drown the training log; errors still show.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
