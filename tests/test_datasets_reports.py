"""Other datasets (many classes with string labels, sentence pairs, no validation split) and the
files a user reads after a run: reports, charts, predictions for given texts, int8 models."""

from helpers import run_script


def test_torch_dynamic_int8_is_gone_with_a_pointer_to_onnx_int8(trained_teacher, sst2_slice):
    result = run_script("evaluate.py", "--model", trained_teacher, "--data_path", sst2_slice, "--quantize",
                        "dynamic-int8")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "--quantize onnx-int8" in result.stderr, result
