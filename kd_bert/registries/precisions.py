"""The precisions a run may ask for (--mixed_precision). Which one `auto` picks on this machine is
train/precision.py's answer; this module imports no torch: the configs are built from it before torch loads."""

from __future__ import annotations

from ..errors import UserError

MIXED_PRECISION_CHOICES = ("auto", "no", "fp16", "bf16")


def check_choice(requested: str) -> str:
    if requested not in MIXED_PRECISION_CHOICES:
        raise UserError(f"--mixed_precision must be one of {', '.join(MIXED_PRECISION_CHOICES)} (got {requested})")
    return requested
