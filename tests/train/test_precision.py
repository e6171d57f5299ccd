"""--mixed_precision: auto picks what the hardware supports (the detection mocked) and is recorded; bf16
autocast reaches the layers and changes the arithmetic, in training and distillation, while the saved
weights stay float32; fp16 without a GPU is refused."""

from __future__ import annotations

import json
import os
import platform

import pytest
import torch
from helpers import QUIET, assert_clean_failure, load_plain, run_script
from safetensors.torch import load_file
from torch import nn

from kd_bert import DataConfig, TrainConfig, train_teacher
from kd_bert.errors import UserError
from kd_bert.train import precision as precision_module
from kd_bert.train.precision import cpu_bf16_flags, cpu_name, resolve_precision

# ---------------------------------------------------------------- auto picks what the hardware does


def fake_machine(monkeypatch, tmp_path, cpu_flags: str | None, cuda: tuple[bool, bool, str] = (False, False, "")):
    """A machine with these CPU flags (None: no /proc/cpuinfo) and this CUDA GPU."""
    cpuinfo = tmp_path / "cpuinfo"
    if cpu_flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {cpu_flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    monkeypatch.setattr(precision_module, "CPUINFO", str(cpuinfo))
    monkeypatch.setattr(precision_module, "cuda_device", lambda: cuda)
    monkeypatch.delenv(precision_module.AUTO_ENV, raising=False)  # the hardware decides, even in a forced-bf16 run


@pytest.mark.parametrize("flags, mode, named", [
    ("avx512f avx512_bf16 avx512_vnni", "bf16", "avx512_bf16"),
    ("avx512f amx_bf16 amx_tile", "bf16", "amx_bf16"),
    ("avx512f avx512_vnni avx2", "no", "no avx512_bf16 or amx_bf16"),
    (None, "no", "could not be read"),
])
def test_auto_on_a_cpu_follows_its_bf16_flags(flags, mode, named, monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, flags)
    chosen = resolve_precision("auto")
    assert chosen.mode == mode and named in chosen.reason
    assert chosen.to_json()["mixed_precision_reason"] == chosen.reason


def test_auto_on_a_gpu(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, "avx2", cuda=(True, True, "H100"))
    assert resolve_precision("auto").mode == "bf16"
    fake_machine(monkeypatch, tmp_path, "avx512_bf16", cuda=(True, False, "T4"))
    assert resolve_precision("auto").mode == "fp16"  # the GPU decides, not the CPU


def test_explicit_choices_are_kept(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, "avx512_bf16")
    assert resolve_precision("no").mode == "no"
    fake_machine(monkeypatch, tmp_path, "avx2")
    assert resolve_precision("bf16").mode == "bf16"  # slow without native bf16, but asked for
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16")


@pytest.mark.parametrize("cpu_flags, cuda", [("avx2", (False, False, "")), ("avx512_bf16", (True, True, "H100"))])
def test_the_environment_can_say_what_auto_picks(cpu_flags, cuda, monkeypatch, tmp_path):
    """KD_BERT_AUTO_PRECISION makes auto pick as on another machine, and says so; a forced choice is kept."""
    fake_machine(monkeypatch, tmp_path, cpu_flags, cuda)
    for mode in ("bf16", "no"):
        monkeypatch.setenv("KD_BERT_AUTO_PRECISION", mode)
        chosen = resolve_precision("auto")
        assert (chosen.mode, chosen.reason) == (mode, f"auto: KD_BERT_AUTO_PRECISION={mode}")
    assert resolve_precision("no").mode == "no" and resolve_precision("bf16").reason == "--mixed_precision bf16"
    monkeypatch.setenv("KD_BERT_AUTO_PRECISION", "fp8")
    with pytest.raises(UserError, match=r"\$KD_BERT_AUTO_PRECISION must be one of bf16, no \(got fp8\)"):
        resolve_precision("auto")


def test_the_flags_are_read_from_the_kernel_not_the_vendor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC bf16 edition\nflags\t\t: avx512f avx2\n")
    assert cpu_bf16_flags(info) == []
    info.write_text("vendor_id\t: GenuineIntel\nflags\t\t: avx512f avx512_bf16\n")
    assert cpu_bf16_flags(info) == ["avx512_bf16"]


def test_the_cpu_name_recorded_with_timings_is_the_kernels(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t: avx2\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n")
    assert cpu_name(info) == "AMD EPYC 9R14"
    info.write_text("processor\t: 0\nFeatures\t: fp asimd\n")  # an ARM kernel names no model
    assert cpu_name(info) == platform.machine() == cpu_name(tmp_path / "missing")


def this_machine_mode() -> str:
    """What auto should pick here, read independently of the project's parser."""
    if os.environ.get("KD_BERT_AUTO_PRECISION"):
        return os.environ["KD_BERT_AUTO_PRECISION"]
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return "no"
    return "bf16" if torch.cuda.is_available() or "avx512_bf16" in text or "amx_bf16" in text else "no"


@pytest.mark.precision
def test_the_default_is_auto_and_is_recorded(trained_teacher):
    # trained_teacher ran with no --mixed_precision flag.
    run = json.loads((trained_teacher / "training_args.json").read_text())
    metrics = json.loads((trained_teacher / "metrics.json").read_text())
    assert run["args"]["mixed_precision"] == "auto"
    assert run["mixed_precision"] == metrics["mixed_precision"] == this_machine_mode()
    assert metrics["mixed_precision_reason"].startswith("auto:")


def test_fp16_without_a_gpu(sst2_slice, tiny_models, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp16 is valid where CUDA is available")
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--mixed_precision", "fp16", "--output_dir", tmp_path / "out")
    assert_clean_failure(result, "fp16 needs a CUDA GPU", "--mixed_precision no", output_dir=tmp_path / "out")


# ---------------------------------------------------------------- bf16 autocast; the weights stay float32


@pytest.mark.parametrize("mode, dtype", [("bf16", torch.bfloat16), ("no", torch.float32)])
def test_mixed_precision_sets_the_dtype_the_linear_layers_compute_in(mode, dtype, sst2_slice, tiny_models, tmp_path,
                                                                      monkeypatch):
    """A forward hook on every Linear of the model the job loads sees the activations of training and
    validation; bf16 autocast must make them bf16 (on any CPU: without native bf16 it is emulated),
    and `no` must leave them float32."""
    import kd_bert.jobs.teacher as jobs

    seen: dict[bool, set] = {True: set(), False: set()}  # training mode -> output dtypes

    def record(module, inputs, output):
        seen[module.training].add(output.dtype)

    def load_and_watch(*args, **kwargs):
        model = load_classifier(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(record)
        return model

    load_classifier = jobs.load_classifier
    monkeypatch.setattr(jobs, "load_classifier", load_and_watch)
    result = train_teacher(str(tiny_models["teacher_base"]), DataConfig(data_path=str(sst2_slice), max_length=32,
                                                                         max_eval_samples=16),
                           TrainConfig(output_dir=str(tmp_path), num_train_epochs=1, max_train_samples=16,
                                       mixed_precision=mode, **QUIET))
    assert seen == {True: {dtype}, False: {dtype}}
    # The weights themselves stay float32: autocast casts per operation.
    assert all(t.dtype == torch.float32 for t in load_file(str(result.model_dir / "model.safetensors")).values())


def test_bf16_changes_the_arithmetic_and_saves_float32(sst2_slice, tiny_models, tmp_path):
    """Autocast really runs: the same seed in bf16 and in full precision gives close but different
    losses, and the bf16 model is saved in float32 and loads with plain transformers."""
    runs = {}
    for mode in ("bf16", "no"):
        out = tmp_path / mode
        result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                            tiny_models["teacher_base"], "--output_dir", out, "--mixed_precision", mode,
                            "--num_train_epochs", "1", "--max_train_samples", "64", "--batch_size", "16")
        assert result.returncode == 0, result
        assert f"mixed precision {mode} (--mixed_precision {mode})" in result.stdout
        runs[mode] = json.loads((out / "teacher" / "metrics.json").read_text())["history"][0]["train_loss"]
    assert runs["bf16"] != runs["no"]
    assert runs["bf16"] == pytest.approx(runs["no"], rel=0.05)
    model, _ = load_plain(tmp_path / "bf16" / "teacher")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_mixed_precision_distillation_on_cpu(sst2_slice, trained_teacher, tiny_models, tmp_path):
    # Autocast runs both models in bf16; the loss terms compute in float32 and the saved weights stay float32.
    result = run_script("distilled-bert.py", "--data_path", sst2_slice, "--teacher_model", trained_teacher,
                        "--student_model", tiny_models["student_base"], "--output_dir", tmp_path,
                        "--mixed_precision", "bf16", "--num_train_epochs", "1", "--max_train_samples", "64")
    assert result.returncode == 0, result
    args = json.loads((tmp_path / "student" / "training_args.json").read_text())
    assert args["mixed_precision"] == "bf16"
    model, _ = load_plain(tmp_path / "student")
    assert next(model.parameters()).dtype == torch.float32
