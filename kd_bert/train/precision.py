"""Which precision a run computes in, chosen for the hardware it runs on.

`--mixed_precision auto` (the default of every script) picks:
  * bf16 on a CUDA GPU that supports it, fp16 on an older one;
  * bf16 on a CPU with native bf16 instructions (avx512_bf16 or AMX), where a bf16 matmul runs
    faster than fp32;
  * full precision (`no`) on any other CPU, where bf16 is emulated and slower than fp32.
The CPU's features are read from what the kernel reports (/proc/cpuinfo), never guessed from the
vendor or model name. `no`, `fp16` and `bf16` force a choice. Weights, optimizer state and losses
stay float32 either way: autocast runs only the matrix work in the lower precision.

$KD_BERT_AUTO_PRECISION (bf16 or no), when set, is what `auto` picks, whatever the hardware: a machine
without native bf16 runs as one with it (emulated, slower), so both of `auto`'s choices can be tested on
one machine. The reason line names the variable; a forced `--mixed_precision` ignores it.

Training, the validation inside it, the teacher-logit pass and evaluate.py all run in the chosen
precision: measured on SST-2 dev, evaluate.py's (emulated) bf16 predictions agreed with its fp32 ones on
every sentence (docs/performance.md, Precision); `--mixed_precision no` scores in full precision regardless.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..registries.precisions import check_choice

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags of native bf16 dot products / tile matmuls
CPUINFO = "/proc/cpuinfo"
AUTO_ENV = "KD_BERT_AUTO_PRECISION"
AUTO_ENV_CHOICES = ("bf16", "no")  # not fp16: it needs a CUDA GPU, which auto already picks it for


@dataclass(frozen=True)
class Precision:
    mode: str  # what Accelerate runs: "no", "fp16" or "bf16"
    reason: str  # one line saying why, printed and recorded with the run
    requested: str = "auto"

    @property
    def computes_in(self) -> str:
        """The matrix work's precision: fp32 without mixed precision, else the mode."""
        return "fp32" if self.mode == "no" else self.mode

    def describe(self) -> str:
        return f"mixed precision {self.mode} ({self.reason})"

    def to_json(self) -> dict:
        return {"mixed_precision": self.mode, "mixed_precision_requested": self.requested,
                "mixed_precision_reason": self.reason}


def cpu_name(cpuinfo: str | Path | None = None) -> str:
    """The CPU's model name as the kernel reports it, for the records of timed runs; the architecture
    where it reports none."""
    try:
        text = Path(cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    names = [line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("model name")]
    return names[0] if names and names[0] else platform.machine() or "unknown"


def cpu_bf16_flags(cpuinfo: str | Path | None = None) -> list[str] | None:
    """The native-bf16 flags among the CPU's features, or None when the features cannot be read
    (not Linux)."""
    try:
        text = Path(cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [f for f in CPU_BF16_FLAGS if f in flags]


def cuda_device() -> tuple[bool, bool, str]:
    """(a CUDA GPU is visible, it computes in bf16 natively, its name)."""
    import torch  # not at the top: configs import this module, and --help must not wait for torch

    if not torch.cuda.is_available():
        return False, False, ""
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.4 has no including_emulation and reports native support
        native = torch.cuda.is_bf16_supported()
    return True, native, torch.cuda.get_device_name()


def resolve_precision(requested: str | None) -> Precision:
    """The precision to run in for `--mixed_precision requested` on this machine."""
    requested = check_choice(requested or "auto")
    cuda, cuda_bf16, gpu = cuda_device()
    if requested != "auto":
        if requested == "fp16" and not cuda:
            raise UserError("--mixed_precision fp16 needs a CUDA GPU; on CPU use --mixed_precision no (or bf16, "
                            "or auto to pick for this machine)")
        return Precision(requested, "--mixed_precision " + requested, requested)
    forced = os.environ.get(AUTO_ENV, "").strip()
    if forced:
        if forced not in AUTO_ENV_CHOICES:
            raise UserError(f"${AUTO_ENV} must be one of {', '.join(AUTO_ENV_CHOICES)} (got {forced}); unset it to "
                            f"let --mixed_precision auto pick for this machine")
        return Precision(forced, f"auto: {AUTO_ENV}={forced}")
    if cuda:
        if cuda_bf16:
            return Precision("bf16", f"auto: the GPU ({gpu}) computes in bf16 natively")
        return Precision("fp16", f"auto: the GPU ({gpu}) has no native bf16, so fp16")
    flags = cpu_bf16_flags()
    if flags is None:
        return Precision("no", "auto: the CPU's features could not be read (no /proc/cpuinfo), so full precision")
    if flags:
        return Precision("bf16", f"auto: the CPU has native bf16 ({', '.join(flags)})")
    return Precision("no", f"auto: the CPU has no native bf16 (no {' or '.join(CPU_BF16_FLAGS)}), "
                           f"where bf16 is slower than fp32")
