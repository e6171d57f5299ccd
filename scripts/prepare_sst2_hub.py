"""Write the hub's SST-2 in `datasets`' save_to_disk form (needs a reachable Hugging Face Hub).

    python scripts/prepare_sst2_hub.py --output ./data/sst2_hub
    python trainer_teacher.py --data_path ./data/sst2_hub ...

The result is a DatasetDict with columns idx, sentence, label (ClassLabel negative/positive;
test labels are -1). The bundled ./data/sst2 holds the same data as GLUE TSV files.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_bert import cli  # noqa: E402
from kd_bert.errors import UserError  # noqa: E402
from kd_bert.data.read import load_hub_dataset  # noqa: E402
from kd_bert.safety.atomic import save_folder_atomically  # noqa: E402
from kd_bert.safety.preflight import check_folder  # noqa: E402


def prepare(args: argparse.Namespace) -> None:
    output = Path(args.output)
    check_folder(output, f"--output {args.output}")
    if output.exists() and any(output.iterdir()):
        raise UserError(f"--output {args.output} already holds files; give a new or empty folder")
    dataset = load_hub_dataset(args.dataset, "--dataset")
    # Written beside, then renamed: a stop midway leaves no half-written dataset at --output.
    save_folder_atomically(output, lambda folder: dataset.save_to_disk(str(folder)))
    print(f"saved {args.dataset} ({', '.join(f'{k}: {len(v)}' for k, v in dataset.items())}) to {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="stanfordnlp/sst2", help="hub dataset (default: %(default)s)")
    parser.add_argument("--output", default="./data/sst2_hub", help="folder to write (default: %(default)s)")
    cli.add_debug_arg(parser)
    cli.run(prepare, parser)
