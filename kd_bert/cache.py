"""The per-user cache every run shares: teacher logits (distillation/teacher_cache.py) and the
checkpoints installed from the package index (models/packaged.py) live in it, side by side."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "KD_BERT_CACHE"


def default_cache_dir() -> Path:
    """The per-user cache shared by all runs: $KD_BERT_CACHE, else $XDG_CACHE_HOME/kd-bert, else
    ~/.cache/kd-bert."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "kd-bert"
