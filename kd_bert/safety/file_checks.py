"""Is a saved file whole? Cheap structural checks of the formats a checkpoint holds, read from their
headers and indexes only: a bert-large checkpoint is gigabytes, and loading it (or reading every byte
of it) to find a truncated file would cost what resuming saves.

  * safetensors: an 8-byte header length, a JSON header, then the tensors' data; the largest data
    end offset in the header fixes the file's size exactly.
  * torch.save's zip archives (.bin, .pt, .pth, and Accelerate's .pkl files, which are torch.save
    output too): the central directory at the end lists every member and where it starts; each
    member's data must end inside the file.
  * a plain pickle: its opcodes are walked (never executed) up to the STOP that ends it.

Each check returns None for a whole file, or what is wrong with it in words.
"""

from __future__ import annotations

import json
import pickletools
import struct
import zipfile
from pathlib import Path

SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")
CHECKED_SUFFIXES = (SAFETENSORS_SUFFIX, *TORCH_SUFFIXES)
ZIP_MAGIC = b"PK\x03\x04"
MAX_SAFETENSORS_HEADER = 100_000_000  # the library's own limit; a larger length is a corrupt first 8 bytes
LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip member's local header: signature, ..., name and extra lengths


def file_problem(path: Path) -> str | None:
    """What is wrong with the file at path, judged by its suffix; None when it is whole (or of a
    kind not checked)."""
    if not path.is_file():
        return f"{path.name} is missing"
    if path.suffix == SAFETENSORS_SUFFIX:
        return safetensors_problem(path)
    if path.suffix in TORCH_SUFFIXES:
        return torch_file_problem(path)
    return None


def _size(size: int) -> str:
    return f"{size:,} byte" + ("" if size == 1 else "s")


def safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{path.name} is truncated: {_size(size)}, less than its 8-byte header length"
        (header_len,) = struct.unpack("<Q", head)
        if header_len > MAX_SAFETENSORS_HEADER:
            return f"{path.name} is corrupt: its header length reads {header_len:,} bytes"
        if 8 + header_len > size:
            return f"{path.name} is truncated: {_size(size)}, and its header alone takes {_size(8 + header_len)}"
        try:
            header = json.loads(f.read(header_len))
            ends = [int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return f"{path.name} is corrupt: its header is not a safetensors index"
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        return f"{path.name} is truncated: {size:,} of {_size(expected)}"
    if size > expected:
        return f"{path.name} is corrupt: {_size(size)} where its header accounts for {_size(expected)}"
    return None


def torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive; a file that is not one is checked as a plain pickle."""
    with open(path, "rb") as f:
        magic = f.read(len(ZIP_MAGIC))
    if not magic:
        return f"{path.name} is empty"
    if ZIP_MAGIC.startswith(magic):  # a zip archive, or the first bytes of one
        return zip_problem(path)
    return pickle_problem(path)


def zip_problem(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
            # The members' data lies before the central directory that lists them.
            limit = getattr(archive, "start_dir", size)
            for member in archive.infolist():
                f.seek(member.header_offset)
                local = f.read(LOCAL_HEADER.size)
                if len(local) < LOCAL_HEADER.size:
                    return f"{path.name} is truncated: its member {member.filename} starts past the end"
                signature, name_len, extra_len = LOCAL_HEADER.unpack(local)
                if signature != ZIP_MAGIC:
                    return f"{path.name} is corrupt: its member {member.filename} has no header where listed"
                end = member.header_offset + LOCAL_HEADER.size + name_len + extra_len + member.compress_size
                if end > limit:
                    return f"{path.name} is corrupt: its member {member.filename} runs past the data ({end:,} of " \
                           f"{_size(limit)})"
    except zipfile.BadZipFile:
        # The directory is the archive's last bytes: a cut-off file has none.
        return f"{path.name} is truncated or corrupt: {_size(size)} that do not end in a zip directory"
    except (OSError, ValueError, EOFError) as exc:
        return f"{path.name} is corrupt: {exc}"
    return None


def pickle_problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            for _ in pickletools.genops(f):  # raises on a truncated stream, before or in place of STOP
                pass
    except (ValueError, EOFError, struct.error) as exc:
        return f"{path.name} is truncated or corrupt: not a complete pickle ({exc})"
    return None
