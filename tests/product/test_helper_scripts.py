"""scripts/truncate_layers.py and scripts/prepare_sst2_hub.py never write over what they read or what a folder
already holds."""

from __future__ import annotations

import shutil

from helpers import assert_clean_failure, listing, run_script


def test_truncate_layers_saves_a_smaller_model_that_loads(tiny_models, tmp_path):
    from transformers import AutoModel

    out = tmp_path / "cut"
    result = run_script("scripts/truncate_layers.py", "--model", tiny_models["teacher_base"], "--layers", "1",
                        "--output", out)
    assert result.returncode == 0, result
    assert AutoModel.from_pretrained(out).config.num_hidden_layers == 1


def test_truncate_layers_never_replaces_the_model_it_reads(tiny_models, tmp_path):
    model = shutil.copytree(tiny_models["teacher_base"], tmp_path / "model")
    before = listing(model)
    for output in (model, tmp_path):  # the model itself, and a folder that holds it
        result = run_script("scripts/truncate_layers.py", "--model", model, "--layers", "1", "--output", output,
                            "--overwrite")
        assert_clean_failure(result, "which this run reads")
    assert listing(model) == before


def test_truncate_layers_replaces_a_folder_only_when_asked(tiny_models, tmp_path):
    out = tmp_path / "cut"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_script("scripts/truncate_layers.py", "--model", tiny_models["teacher_base"], "--layers", "1",
                        "--output", out)
    assert_clean_failure(result, "already holds files", "--overwrite")
    assert listing(out) == {"notes.txt": b"mine"}
    result = run_script("scripts/truncate_layers.py", "--model", tiny_models["teacher_base"], "--layers", "1",
                        "--output", out, "--overwrite")
    assert result.returncode == 0 and (out / "config.json").is_file() and not (out / "notes.txt").exists()


def test_prepare_sst2_hub_refuses_a_folder_that_holds_files_before_asking_the_hub(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "train.tsv").write_text("sentence\tlabel\n")
    result = run_script("scripts/prepare_sst2_hub.py", "--output", out)  # refused before any hub request
    assert_clean_failure(result, f"--output {out} already holds files")
    assert listing(out) == {"train.tsv": b"sentence\tlabel\n"}
