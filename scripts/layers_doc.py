"""Write the table of layers in docs/architecture.md from kd_bert/layers.py, so the page cannot drift from the
declared order (which tests/test_layers.py holds every import to).

    python scripts/layers_doc.py            # rewrite the block between <!-- layers --> and <!-- /layers -->
    python scripts/layers_doc.py --check    # exit 1 when the page's block is not what this would write
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- layers -->\n)(.*?)(<!-- /layers -->)", re.S)
sys.path.insert(0, str(REPO))

from kd_bert.layers import markdown  # noqa: E402


def written(page: str) -> str:
    """The page with its block of layers as markdown() writes it."""
    if not BLOCK.search(page):
        raise SystemExit(f"{PAGE} has no <!-- layers --> ... <!-- /layers --> block")
    return BLOCK.sub(lambda m: m.group(1) + markdown() + m.group(3), page)


def main() -> int:
    page = PAGE.read_text(encoding="utf-8")
    new = written(page)
    if "--check" in sys.argv[1:]:
        if new != page:
            print(f"{PAGE.relative_to(REPO)} is stale: run python scripts/layers_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
