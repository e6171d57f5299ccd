"""Where a model comes from: a local folder, the package index, the local cache or the hub.

transformers retries an unreachable hub for about half a minute before it gives up. One short
metadata request answers the same question in well under a second, so every hub id is probed
first (kd_bert/hub.py), and a local folder or the local cache is used without touching the network at all.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import try_to_load_from_cache

from ..errors import UserError
from ..hub import hub_offline, looks_like_path, probe
from . import packaged


def resolve_model(name_or_path: str, flag: str) -> tuple[str, bool]:
    """Where to load a model from, and whether to stay off the network (local_files_only).

    A folder must look like a saved model; a hub id is used from the local cache when it is there,
    otherwise probed once, and an unreachable hub is a clear error within seconds.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"{flag} {name_or_path}: the folder has no config.json, so it is not a saved model; "
                f"pass a folder written by save_pretrained (e.g. ./models/teacher)"
            )
        check_no_custom_code(path, f"{flag} {name_or_path}")
        return str(path), True
    if looks_like_path(name_or_path) or path.exists():
        raise UserError(f"{flag} {name_or_path}: no such model folder; check the path or train it first")

    # A checkpoint the package index carries is used from its verified installed copy, without the
    # network: the same files the hub serves, pinned by digest (packaged.py).
    installed = packaged.local_copy(name_or_path, flag)
    if installed:
        return installed, True
    cached = _in_cache(name_or_path)
    install_hint = (f"; or install it from the package index with: {packaged.install_command(name_or_path)}"
                    if name_or_path in packaged.PACKAGED else "")
    if hub_offline():
        if cached:
            return name_or_path, True
        raise UserError(
            f"{flag} {name_or_path}: not a local folder and not in the local cache, and HF_HUB_OFFLINE is set; "
            f"pass a local model folder instead: {flag} /path/to/model{install_hint}"
        )
    problem = probe("model", name_or_path)
    if problem is None:
        return name_or_path, False
    if cached:
        return name_or_path, True
    raise UserError(
        f"{flag} {name_or_path}: {problem}; pass a local model folder instead: {flag} /path/to/model"
        f"{install_hint} (see README, 'Running offline')"
    )


def check_no_custom_code(folder: Path, what: str) -> None:
    """Refuse a model folder that would need code of its own: a model_type transformers does not know
    (transformers would ask to run the folder's Python files, and import them on a "y"), or an
    auto_map naming such code. This project's own model types are known (custom_models registers
    them) and load without their auto_map."""
    from transformers import CONFIG_MAPPING

    from .custom_models import BiLSTMConfig, MeanPoolConfig, StaticEmbeddingConfig

    own = {MeanPoolConfig.model_type, BiLSTMConfig.model_type, StaticEmbeddingConfig.model_type}
    config = _json_object(folder / "config.json")
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type not in CONFIG_MAPPING:
        raise UserError(f"{what}: its config.json has model_type {_short(model_type)}, which transformers "
                        f"{_transformers_version()} does not know, and this project runs no code from a model folder; "
                        f"use a model of a type transformers knows (bert, roberta, ...), or a newer transformers")
    for name in ("config.json", "tokenizer_config.json"):
        auto_map = (config if name == "config.json" else _json_object(folder / name)).get("auto_map")
        if auto_map and not (name == "config.json" and model_type in own):
            raise UserError(f"{what}: its {name} names code of its own to run (auto_map: {_short(auto_map)}), and "
                            f"this project runs no code from a model folder; use a model transformers loads without "
                            f"it, or remove auto_map if the model type is a stock one")


def _json_object(path: Path) -> dict:
    """A JSON file's object; {} when it is missing or not one (the loaders then say what is wrong)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _in_cache(repo_id: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:
        return False
