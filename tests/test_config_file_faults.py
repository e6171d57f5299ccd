"""--config files that are ambiguous, malformed or hostile end in one short line naming the file and the
problem: flags beside a training_args.json's "args", a key given twice, text that is not UTF-8, YAML
aliases (a small file that expands without bound), nesting without end; a byte-order mark is fine."""

import json
import time

import pytest
from helpers import assert_clean_failure, parse, run_script

from kd_bert import UserError


def refused(path, *phrases):
    with pytest.raises(UserError) as error:
        parse("distilled-bert.py", path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 300, message
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_flags_beside_an_args_mapping_are_refused_and_a_run_record_is_not(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"args": {"learning_rate": 1e-4}, "learning_rate": 3e-5, "alpha": 0.9}))
    refused(path, str(path), '"args" mapping', "learning_rate, alpha", "put every flag in args")
    # A training_args.json: its record of the run beside args (mixed_precision as resolved) sets nothing.
    path.write_text(json.dumps({"role": "student", "args": {"learning_rate": 1e-4, "mixed_precision": "auto"},
                                "started": "2024-01-01T00:00:00+00:00", "versions": {}, "device": "cpu",
                                "num_processes": 1, "mixed_precision": "no", "mixed_precision_reason": "cpu"}))
    flags = parse("distilled-bert.py", path)
    assert flags.learning_rate == 1e-4 and flags.mixed_precision == "auto"


def test_a_key_given_twice_is_refused(tmp_path):
    pytest.importorskip("yaml")
    (tmp_path / "run.json").write_text('{"alpha": 0.5, "temperature": 2, "alpha": 0.9}')
    refused(tmp_path / "run.json", "the key 'alpha' is given twice")
    (tmp_path / "run.yaml").write_text("alpha: 0.5\ntemperature: 2\nalpha: 0.9\n")
    refused(tmp_path / "run.yaml", "the key 'alpha' is given twice (lines 1 and 3)")


def test_a_byte_order_mark_is_accepted_and_other_encodings_are_named(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"alpha": 0.9}).encode())
    assert parse("distilled-bert.py", path).alpha == 0.9
    path.write_bytes('{"student_model": "mod\u00e8le"}'.encode("latin-1"))
    refused(path, f"{path} is not UTF-8 text (byte 22 is 0xe8)", "save it as UTF-8")


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    pytest.importorskip("yaml")
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]  # 9**12 strings
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    refused(path, "line 2 uses the alias *a0", "without anchors and aliases")
    assert time.perf_counter() - start < 5
    result = run_script("evaluate.py", "--config", path)
    assert_clean_failure(result, "uses the alias")
    assert len(result.stderr) < 300


def test_long_or_deep_values_give_short_messages(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"learning_rate": "x" * 100_000}))
    refused(path, "learning_rate must be a number (got 'xxxx", "...")
    path.write_text(json.dumps({"y" * 100_000: 1}))
    refused(path, "unknown key")
    path.write_text("[" * 100_000 + "]" * 100_000)
    refused(path, "nested too deeply")
    path.write_text('{"alpha": "' + "x" * 100_000)
    refused(path, "is not valid JSON: Unterminated string")
