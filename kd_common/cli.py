"""The entry layer: flags generated from the config dataclasses, and errors turned into one line.

A script builds its parser from the configs it takes (add_arguments), parses, builds the configs
from the flags (each validates itself) and calls the Python API; nothing below this layer sees the
parsed flags. This module imports no torch: `--help` answers before any heavy import.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from typing import Callable

from .config import DATA, INTERMEDIATE, LOGITS, STUDENT, TRAINING, TRANSFER
from .errors import UserError

GROUP_ORDER = (DATA, TRAINING, LOGITS, INTERMEDIATE, STUDENT, TRANSFER)  # as --help lists them


def add_arguments(parser: argparse.ArgumentParser, *configs: type, defaults: dict | None = None) -> None:
    """A flag --NAME for every flag field of the configs: top-level ones in the order given, then the
    groups in GROUP_ORDER, then the top-level flags marked `last` (--mixed_precision). `defaults`
    overrides a field's default for this script (the teacher and the student have different learning
    rates)."""
    flag_fields = [f for config in configs for f in fields(config) if "help" in f.metadata]
    titles = {f.metadata["group"] for f in flag_fields}
    groups = {title: parser.add_argument_group(title) for title in GROUP_ORDER if title in titles}
    seen = set()  # a field two configs share (--mixed_precision) is one flag

    def rank(f) -> int:
        group = f.metadata["group"]
        return len(GROUP_ORDER) if f.metadata["last"] else -1 if group is None else GROUP_ORDER.index(group)

    for f in sorted(flag_fields, key=rank):  # a stable sort: the order given within a rank
        if f.name in seen:
            continue
        seen.add(f.name)
        meta = f.metadata
        target = parser if meta["group"] is None else groups[meta["group"]]
        target.add_argument(f"--{f.name}", *meta["aliases"], dest=f.name, help=meta["help"],
                            default=(defaults or {}).get(f.name, f.default), **meta["argparse"])


def add_debug_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")


def run(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser, argv=None) -> None:
    """Parse and run; a UserError (a config that cannot work included) becomes `error: ...` on
    stderr and exit status 2."""
    flags = parser.parse_args(argv)
    _quiet_libraries()
    try:
        main(flags)
    except UserError as exc:
        if flags.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if flags.debug or not _is_cuda_oom(exc):
            raise
        batch = getattr(flags, "batch_size", 32)
        print(
            f"error: CUDA ran out of memory; try --batch_size {max(1, batch // 2)} "
            f"--gradient_accumulation_steps {2 * getattr(flags, 'gradient_accumulation_steps', 1)} "
            f"(same effective batch), or a shorter --max_length",
            file=sys.stderr,
        )
        sys.exit(2)


def _is_cuda_oom(exc: BaseException) -> bool:
    import torch  # only once a run has failed: torch is loaded by then anyway

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _quiet_libraries() -> None:
    # Load reports and per-file progress bars drown the training log; errors still show.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers  # after parsing, so that --help does not wait for it

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
