"""Running at scale: precision chosen for the hardware, one teacher pass shared by every run,
evaluation inside long epochs, frozen word embeddings."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers import FAST_TRAINING, independent_predictions, load_plain, read_tsv, run_script

from kd_bert.errors import UserError
from kd_bert.train import precision as precision_module
from kd_bert.train.precision import cpu_bf16_flags, resolve_precision

# ------------------------------------------------------------- precision: auto picks what the hardware does


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


# ------------------------------------------------------------- evaluation inside long epochs


@pytest.fixture(scope="module")
def eval_steps_teacher(tmp_path_factory, sst2_slice, tiny_models):
    """The trained_teacher run again, evaluated every 7 batches too (20 batches an epoch, 2 epochs)."""
    out = tmp_path_factory.mktemp("eval-steps")
    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", out, *FAST_TRAINING, "--eval_steps", "7")
    assert result.returncode == 0, result
    return out / "teacher", result


def test_eval_steps_evaluate_inside_epochs_without_changing_training(eval_steps_teacher, trained_teacher):
    folder, result = eval_steps_teacher
    metrics = json.loads((folder / "metrics.json").read_text())
    plain = json.loads((trained_teacher / "metrics.json").read_text())
    assert [e["global_step"] for e in metrics["evaluations"]] == [7, 14, 21, 28, 35]
    assert result.stdout.count("step 7: validation accuracy") == 1
    # The evaluations draw no random numbers: training is the run without --eval_steps, loss for loss.
    assert [h["train_loss"] for h in metrics["history"]] == [h["train_loss"] for h in plain["history"]]
    assert [h["eval"]["accuracy"] for h in metrics["history"]] == [h["eval"]["accuracy"] for h in plain["history"]]


def test_eval_steps_have_their_own_tensorboard_curves(eval_steps_teacher):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, _ = eval_steps_teacher
    events = EventAccumulator(str(folder.parent / "runs" / "teacher"))
    events.Reload()
    metrics = json.loads((folder / "metrics.json").read_text())
    inside = events.Scalars("eval_steps/accuracy")  # counted in batches
    assert [e.step for e in inside] == [7, 14, 21, 28, 35]
    assert [e.value for e in inside] == pytest.approx([e["eval"]["accuracy"] for e in metrics["evaluations"]])
    assert [e.step for e in events.Scalars("eval/accuracy")] == [1, 2]  # the epochs' own curve counts epochs


@pytest.mark.precision
def test_eval_steps_keep_the_best_model_of_all_evaluations(eval_steps_teacher, sst2_slice):
    folder, _ = eval_steps_teacher
    metrics = json.loads((folder / "metrics.json").read_text())
    scored = [(e["epoch"], e["global_step"], e["eval"]["accuracy"]) for e in metrics["evaluations"]]
    scored += [(h["epoch"], h["epoch"] * 20, h["eval"]["accuracy"]) for h in metrics["history"]]
    best = max(a for _, _, a in scored)
    assert metrics["validation"]["accuracy"] == best
    first_best = min((step for _, step, a in scored if a == best))
    assert (metrics.get("best_step") or metrics["best_epoch"] * 20) == first_best
    # The saved weights are that model's: an independent pass over dev, in the precision the run validated
    # in, gives the same accuracy.
    dev = read_tsv(sst2_slice / "dev.tsv")[1:]
    predictions = independent_predictions(folder, [r[0] for r in dev], metrics["mixed_precision"])
    assert sum(p == int(r[1]) for p, r in zip(predictions, dev)) / len(dev) == pytest.approx(best)


# ------------------------------------------------------------- frozen word embeddings


def test_freeze_embeddings_keeps_the_table_and_trains_the_rest(sst2_slice, tiny_models, tmp_path):
    from safetensors.torch import load_file

    result = run_script("trainer_teacher.py", "--data_path", sst2_slice, "--model_name_or_path",
                        tiny_models["teacher_base"], "--output_dir", tmp_path, "--freeze_embeddings",
                        "--num_train_epochs", "1", "--max_train_samples", "64", "--batch_size", "16",
                        "--learning_rate", "1e-3")
    assert result.returncode == 0, result
    base = load_file(tiny_models["teacher_base"] / "model.safetensors")
    trained = load_file(tmp_path / "teacher" / "model.safetensors")
    name = "embeddings.word_embeddings.weight"
    assert torch.equal(trained[f"bert.{name}"], base[name])
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained[f"bert.{layer}"], base[layer])
    assert not torch.equal(trained["bert.embeddings.position_embeddings.weight"],
                           base["embeddings.position_embeddings.weight"])
