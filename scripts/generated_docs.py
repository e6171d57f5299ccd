"""The generated parts of the docs, shared by the scripts that write them (scripts/flags_doc.py,
scripts/layers_doc.py, benchmarks/few_labels_curve.py, benchmarks/onnx_speed.py): a whole page, or the block
of a page between `<!-- name -->` and `<!-- /name -->`, rewritten from freshly rendered content, or with
--check compared with it, so that a page that drifts from its source fails the tests."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_or_check(page: Path, block: str | None, content: str, check: bool, command: str) -> int:
    """Put content on the page between the lines `<!-- block -->` and `<!-- /block -->` (block None: content
    is the whole page). With check, write nothing; a page that differs is one line on stderr naming it, its
    block and the command that rewrites it. The exit status: 0, or 1 for a stale page or a missing block."""
    shown = page.relative_to(REPO) if page.is_relative_to(REPO) else page
    text = page.read_text(encoding="utf-8") if page.is_file() else None
    if block is None:
        new = content
    else:
        start, end = f"<!-- {block} -->\n", f"<!-- /{block} -->"
        if text is None or end not in text.partition(start)[2]:
            print(f"{shown} has no {start.strip()} ... {end} block", file=sys.stderr)
            return 1
        head, _, rest = text.partition(start)
        new = head + start + content + end + rest.partition(end)[2]
    if check:
        if new != text:
            where = "" if block is None else f" (its <!-- {block} --> block)"
            print(f"{shown} is out of date{where}: run {command}", file=sys.stderr)
            return 1
        return 0
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(new, encoding="utf-8")
    return 0
