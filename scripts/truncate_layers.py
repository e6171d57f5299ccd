"""Save a BERT-family checkpoint cut down to its first N transformer layers (a smaller student to start from).

    python scripts/truncate_layers.py --model PATH --layers 3 --output ./models/minilm-l3
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_bert import cli  # noqa: E402
from kd_bert.errors import UserError  # noqa: E402


def check_output(args: argparse.Namespace) -> None:
    """--output is replaced as a whole: never the model read, never a folder holding it, and an existing
    model there only with --overwrite."""
    from kd_bert.safety.preflight import check_folder, check_not_read, reads_of

    check_folder(args.output, f"--output {args.output}")
    check_not_read(args.output, f"--output {args.output}", reads_of(model=args.model), whole=True)
    output = Path(args.output)
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise UserError(f"--output {args.output} already holds files; give a new folder, or --overwrite to replace it")


def truncate(args: argparse.Namespace) -> None:
    check_output(args)  # before the seconds transformers takes to load
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from kd_bert.models.load import save_model_atomically

    config = AutoConfig.from_pretrained(args.model, trust_remote_code=False)
    if not 1 <= args.layers <= config.num_hidden_layers:
        raise UserError(f"--layers must be between 1 and {config.num_hidden_layers} for {args.model}")
    # from_pretrained with a smaller num_hidden_layers loads layers 0..N-1 and drops the rest.
    model = AutoModel.from_pretrained(args.model, num_hidden_layers=args.layers, trust_remote_code=False)
    save_model_atomically(model, AutoTokenizer.from_pretrained(args.model, trust_remote_code=False), args.output, {})
    print(f"saved the first {args.layers} of {config.num_hidden_layers} layers of {args.model} to {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="local model folder")
    parser.add_argument("--layers", type=int, required=True, help="how many layers to keep")
    parser.add_argument("--output", required=True, help="folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace what --output holds")
    cli.add_debug_arg(parser)
    cli.run(truncate, parser)
