"""scripts/few_labels.py: a few labeled sentences and the rest as plain text, never written over its input."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from helpers import REPO, read_tsv


def few_labels(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "few_labels.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_labeled_and_unlabeled_sentences_partition_the_training_set(sst2_slice, tmp_path):
    result = few_labels(sst2_slice, tmp_path / "out", "--labeled", "50")
    assert result.returncode == 0, result.stderr
    rows = read_tsv(sst2_slice / "train.tsv")
    kept = read_tsv(tmp_path / "out" / "data" / "train.tsv")
    texts = (tmp_path / "out" / "unlabeled.txt").read_text().splitlines()
    assert kept[0] == rows[0] and len(kept) == 51
    assert sorted([r[0] for r in kept[1:]] + texts) == sorted(r[0] for r in rows[1:])
    assert (tmp_path / "out" / "data" / "dev.tsv").read_text() == (sst2_slice / "dev.tsv").read_text()


@pytest.mark.parametrize("layout", ["out_data_is_data", "out_is_data"])
def test_it_never_writes_over_the_data_it_reads(sst2_slice, tmp_path, layout):
    """OUT/data = DATA once lost 380 of 400 training rows: now refused, with every input file unchanged."""
    data = tmp_path / "run" / "data"
    data.mkdir(parents=True)
    for p in sst2_slice.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    before = digests(data)
    out = data.parent if layout == "out_data_is_data" else data
    result = few_labels(data, out, "--labeled", "50", "--overwrite")
    assert result.returncode == 2 and "over the data it reads" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert digests(data) == before and sorted(p.name for p in data.parent.iterdir()) == ["data"]


@pytest.mark.parametrize("case, message", [
    ("missing", "is missing"),
    ("file", "is a file"),
    ("empty", "has 0 rows"),
    ("negative", "--unlabeled -300: give 0 or more"),
    ("exists", "exists; give another OUT_DIR, or --overwrite"),
])
def test_bad_input_is_one_line_and_writes_nothing(sst2_slice, tmp_path, case, message):
    data, out, extra = sst2_slice, tmp_path / "out", []
    if case == "missing":
        data = tmp_path / "nowhere"
    elif case == "file":
        data = sst2_slice / "train.tsv"
    elif case == "empty":
        data = tmp_path / "empty"
        data.mkdir()
        (data / "train.tsv").write_text("sentence\tlabel\n")
    elif case == "negative":
        extra = ["--unlabeled", "-300"]
    elif case == "exists":
        assert few_labels(sst2_slice, out, "--labeled", "50").returncode == 0
    before = digests(out / "data") if out.exists() else None
    result = few_labels(data, out, "--labeled", "50", *extra)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (digests(out / "data") if out.exists() else None) == before
    if case != "exists":
        assert not out.exists()
