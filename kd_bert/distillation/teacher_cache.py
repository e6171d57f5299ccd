"""Teacher logits computed once per training set and kept on disk.

An eval-mode teacher gives the same logits for the same input every time, so running it at every
step of every epoch recomputes the same numbers. When the loss needs only the teacher's logits, the
teacher instead runs once over the training set (large length-sorted batches, inference_mode,
bf16/fp16 autocast on GPU when mixed precision is on) and the logits are stored under a key of
everything they depend on:

  * the teacher's weights and config (a digest of the files' contents),
  * the teacher's tokenizer and --max_length, the training texts and any --max_train_samples limit
    (all captured exactly by a digest of the teacher's input ids, and also listed one by one),
  * the mixed-precision mode the logits were computed in.

Any change gives a new key, so a stale cache is never read; an unchanged key is reused by every
epoch and by every later run, whatever its output folder: a sweep over alpha, temperature, student
size or seeds pays for the teacher once. The cache is a per-user folder shared by all runs, as Hugging
Face keeps models and datasets: --cache_dir, else $KD_BERT_CACHE, else $XDG_CACHE_HOME/kd-bert, else
~/.cache/kd-bert. Under it, teacher_logits/ holds one `<key>.pt` (the logits, 4 bytes per example and
label, and their sha256) and `<key>.json` (what the key is made of) per training set; deleting the
folder is always safe. An entry is checked when read: one whose logits no longer match their checksum,
or hold inf or nan, is computed again with a warning.

Concurrent runs are safe: an entry's two files are written whole and renamed into place, so a reader sees
a complete entry or none (a full disk leaves neither); and a run takes a lock on its key before computing,
so a second run with the same key waits for the first one's logits instead of computing them again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from ..cache import CACHE_ENV, default_cache_dir  # noqa: F401  (CACHE_ENV: the name callers know)
from ..data.batching import MODEL, EncodedSplit, Encoding, eval_loader, tokenizer_digest
from ..errors import UserError
from ..models import packaged
from ..safety.atomic import write_files_atomically
from ..safety.lock import describe, read_holder, this_run
from ..scoring.prediction import predict_logits

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: each entry carries a checksum of its logits
WAIT_REPORT_S = 30.0  # a run waiting for another's logits says so this often
WAIT_POLL_S = 0.5
_WEIGHT_FILES = ("config.json", ".safetensors", ".bin", ".onnx")


def weights_digest(teacher_source: str, config) -> str:
    """A digest of the teacher folder's config and weight files (an ONNX model's graph and its external
    data files too), or of its hub revision."""
    # A packaged hub id is keyed by the files of the installed copy it loads from, like any folder.
    folder = Path(packaged.local_copy(teacher_source, "--teacher_model") or teacher_source)
    if not folder.is_dir():
        return f"hub:{teacher_source}@{getattr(config, '_commit_hash', None) or 'unknown'}"
    h = hashlib.blake2b(digest_size=16)
    for file in weight_files(folder):
        h.update(os.path.relpath(file, folder).encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def weight_files(folder: Path) -> list[Path]:
    """The files a model folder's outputs depend on, in a fixed order: config.json, the weight files,
    and the files an ONNX graph keeps its weights in (external data, which may have any name)."""
    files = {p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_FILES)}
    for graph in [p for p in files if p.suffix == ".onnx"]:
        files.update(_external_data(graph))
    return sorted(files)


def _external_data(graph: Path) -> set[Path]:
    """The external data files an ONNX graph names; every other file of its folder when the graph
    cannot be read here, so that no change to its weights can go unseen."""
    try:
        import onnx

        model = onnx.load(str(graph), load_external_data=False)
        tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute
                                                   if a.type == onnx.AttributeProto.TENSOR]
        locations = {entry.value for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL
                     for entry in t.external_data if entry.key == "location"}
    except Exception:
        return {p for p in graph.parent.iterdir() if p.is_file()}
    return {graph.parent / location for location in locations if (graph.parent / location).is_file()}


def inputs_digest(encoding: Encoding) -> str:
    h = hashlib.blake2b(digest_size=16)
    for ids in encoding.input_ids:
        h.update(len(ids).to_bytes(4, "little"))
        h.update(b"".join(i.to_bytes(4, "little") for i in ids))
    return h.hexdigest()


def cache_key(teacher_source: str, config, tokenizer, encoding: Encoding, max_length: int, data_path: str,
              mixed_precision: str) -> tuple[str, dict]:
    """(key, what it is made of). Paths are recorded but not keyed: a copied teacher or data folder
    with the same contents reuses the cache."""
    keyed = {
        "format": CACHE_FORMAT,
        "teacher_weights": weights_digest(teacher_source, config),
        "teacher_tokenizer": tokenizer_digest(tokenizer),
        "max_length": max_length,
        "num_examples": len(encoding.input_ids),
        "teacher_inputs": inputs_digest(encoding),
        "mixed_precision": mixed_precision,
    }
    key = hashlib.blake2b(json.dumps(keyed, sort_keys=True).encode(), digest_size=16).hexdigest()
    return key, {**keyed, "teacher": str(teacher_source), "data_path": str(data_path)}


def logits_folder(cache_dir: str | Path | None) -> Path:
    """Where the cached logits live: teacher_logits/ under --cache_dir or the default cache."""
    return Path(cache_dir or default_cache_dir()).expanduser() / "teacher_logits"


def teacher_logits(teacher, encoding: Encoding, key: str, description: dict, cache_dir: str | Path | None,
                   batch_size: int, accelerator) -> tuple[torch.Tensor, dict]:
    """(num_examples, num_labels) float32 logits, row i for example i, from the cache or one pass."""
    path = logits_folder(cache_dir) / f"{key}.pt"
    for entry in (path, path.with_suffix(".json"), path.with_suffix(".lock")):
        if entry.is_dir():
            raise UserError(f"the teacher-logit cache has a folder at {entry}, where a file of its own belongs; "
                            f"remove it (deleting the cache is always safe), or give another --cache_dir")
    accelerator.wait_for_everyone()  # every process looks before any process writes
    log.debug(f"teacher-logit cache: key {key} from " + ", ".join(f"{k} {str(v)[:16]}" for k, v in description.items())
              + f"; {path} {'exists' if path.is_file() else 'does not exist yet'}")
    start = time.perf_counter()
    # One process per run: lock the key, so a concurrent run with the same key waits and reuses. The
    # processes of one distributed run compute together and cannot each take it; two such runs at
    # once both compute, and the rename keeps the file whole either way.
    with _key_lock(path, enabled=accelerator.num_processes == 1):
        logits, reused = _read_or_compute(teacher, encoding, path, description, batch_size, accelerator)
    seconds = time.perf_counter() - start
    verb = "reused" if reused else "computed and cached"
    log.info(f"teacher logits for {len(logits)} training examples {verb} in {seconds:.1f}s ({path})")
    return logits, {"path": str(path), "key": key, "reused": reused, "seconds": seconds}


@contextmanager
def _key_lock(path: Path, enabled: bool):
    """Hold the lock of one cache key while the block runs. A run that finds it held waits, and says
    for whom (the holder writes its pid, host and command into the lock file) and, every
    WAIT_REPORT_S seconds, for how long so far."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; concurrent runs may then both compute, never corrupt
        enabled = False
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(".lock")
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait_for(handle, lock, fcntl)  # released when the handle closes, even if the run dies
        os.ftruncate(handle, 0)
        os.write(handle, (json.dumps(this_run()) + "\n").encode("utf-8"))
        try:
            yield
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def _wait_for(handle: int, lock: Path, fcntl) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    holder = describe(read_holder(lock))
    log.info(f"waiting for another run that is computing these teacher logits ({holder}); it holds {lock}")
    start = last = time.monotonic()
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(min(WAIT_POLL_S, WAIT_REPORT_S))
        if time.monotonic() - last >= WAIT_REPORT_S:
            last = time.monotonic()
            log.info(f"still waiting for the teacher logits of {describe(read_holder(lock))}: {last - start:.0f} s so far "
                f"(lock {lock})")


def _read_or_compute(teacher, encoding: Encoding, path: Path, description: dict, batch_size: int,
                     accelerator) -> tuple[torch.Tensor, bool]:
    logits = _read(path, len(encoding.input_ids))
    reused = logits is not None
    if logits is None:
        split = EncodedSplit({MODEL: encoding}, None)
        loader = accelerator.prepare(eval_loader(split, batch_size))  # length-sorted: little padding
        # Iterating a DataLoader draws from the global RNG; fork it so this one-time pass leaves the
        # random state as it found it, and a cached run draws the same dropout masks as an online one.
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            logits = torch.from_numpy(predict_logits(teacher, loader, accelerator)).float().contiguous()
        _check_finite(logits, description.get("teacher"))
        if accelerator.is_main_process:
            _write(path, logits, description)
        accelerator.wait_for_everyone()
    return logits, reused


def checksum(logits: torch.Tensor) -> str:
    """sha256 of the logits' float32 bytes: an entry changed after it was written no longer matches."""
    return hashlib.sha256(logits.float().contiguous().numpy().tobytes()).hexdigest()


def _check_finite(logits: torch.Tensor, teacher: str | None) -> None:
    bad = int((~torch.isfinite(logits)).any(dim=-1).sum())
    if bad:
        raise UserError(f"the teacher {teacher} gives non-finite logits (inf or nan) for {bad} of {len(logits)} "
                        f"training examples, so it cannot teach; its weights are damaged or overflow: check it with "
                        f"evaluate.py --model {teacher}, and retrain it (without fp16) if it scores no better")


def _read(path: Path, num_examples: int) -> torch.Tensor | None:
    """The cached logits, or None: no entry, or one that cannot be trusted (said in a warning), to be
    computed again."""
    if not path.is_file():
        return None
    problem, logits = None, None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        logits = saved["logits"]
        if not (isinstance(logits, torch.Tensor) and logits.ndim == 2 and len(logits) == num_examples):
            problem = f"do not have one row for each of the {num_examples} training examples"
        elif saved.get("sha256") != checksum(logits):
            problem = "do not match their checksum (the file was changed or damaged after it was written)"
        elif not torch.isfinite(logits).all():
            problem = "hold non-finite values (inf or nan)"
    except Exception as exc:  # a truncated or foreign file
        problem = f"cannot be read ({type(exc).__name__})"
    if problem:
        log.warning(f"the cached teacher logits {path} {problem}; computing them again")
        return None
    return logits.float()


def _write(path: Path, logits: torch.Tensor, description: dict) -> None:
    logits = logits.float().contiguous()
    digest = checksum(logits)
    buffer = io.BytesIO()
    torch.save({"logits": logits, "sha256": digest}, buffer)
    described = json.dumps({**description, "sha256": digest}, indent=2, default=str) + "\n"
    # Both files or neither: each is written to a temporary and renamed once both are whole, the .pt,
    # which readers look for, last. A full disk leaves no <key>.json without its logits.
    write_files_atomically({path.with_suffix(".json"): described.encode("utf-8"), path: buffer.getvalue()})
