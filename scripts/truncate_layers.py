"""Save a BERT-family checkpoint cut down to its first N transformer layers (a smaller student to start from).

    python scripts/truncate_layers.py --model PATH --layers 3 --output ./models/minilm-l3
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_bert import cli  # noqa: E402
from kd_bert.errors import UserError  # noqa: E402


def truncate(args: argparse.Namespace) -> None:
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
    cli.add_debug_arg(parser)
    cli.run(truncate, parser)
