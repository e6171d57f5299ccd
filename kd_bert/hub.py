"""The Hugging Face Hub, as models/ and data/ both reach it: whether it is turned off, whether a name is a
hub id or a local path, and one short metadata request that says within seconds whether an id can be
fetched (transformers and datasets retry an unreachable hub for about half a minute before they give up)."""

from __future__ import annotations

import os

from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

PROBE_TIMEOUT_S = 5.0
_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def looks_like_path(name: str) -> bool:
    """A hub id is `name` or `owner/name`; anything shaped like a path is a local path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or name.strip() == ""


def probe(kind: str, repo_id: str) -> str | None:
    """None when the hub answers for repo_id; otherwise what went wrong, in words."""
    api = HfApi()
    info = api.model_info if kind == "model" else api.dataset_info
    try:
        info(repo_id, timeout=PROBE_TIMEOUT_S)
        return None
    except GatedRepoError:
        return "is gated on the hub: log in with `hf auth login` after accepting its terms"
    except RepositoryNotFoundError:
        return "was not found on the hub"
    except Exception as exc:
        return f"could not be fetched: the Hugging Face Hub is unreachable ({type(exc).__name__})"
