"""Bad input: one line naming the problem and the fix, exit status 2, no traceback, no output folder."""

import pytest
from helpers import assert_clean_failure, run_script


@pytest.mark.parametrize("flag,value,phrase", [
    ("--temperature", "0", "--temperature must be positive"),
    ("--temperature", "-2", "--temperature must be positive"),
    ("--alpha", "1.5", "--alpha must be in [0, 1]"),
    ("--alpha", "-0.1", "--alpha must be in [0, 1]"),
    ("--learning_rate", "-1", "--learning_rate must be positive"),
    ("--validation_split", "1.5", "--validation_split must be in [0, 1)"),
    ("--save_total_limit", "0", "--save_total_limit must be at least 1"),
    ("--seed", "-1", "--seed must be between 0 and 4294967295"),
])
def test_invalid_flag_values(flag, value, phrase, tmp_path):
    result = run_script("distilled-bert.py", flag, value, "--output_dir", tmp_path / "out")
    assert_clean_failure(result, phrase, output_dir=tmp_path / "out")


def test_cuda_out_of_memory_suggests_a_smaller_batch(capsys):
    import argparse

    import torch

    from kd_bert import cli

    def out_of_memory(args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    cli.add_debug_arg(parser)
    with pytest.raises(SystemExit) as stop:
        cli.run(out_of_memory, parser, [])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "out of memory" in message and "--batch_size 16" in message and "--gradient_accumulation_steps 2" in message
