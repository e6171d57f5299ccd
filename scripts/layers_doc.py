"""Write the table of layers in docs/architecture.md from kd_bert/layers.py, so the page cannot drift from the
declared order (which tests/test_layers.py holds every import to).

    python scripts/layers_doc.py            # rewrite the block between <!-- layers --> and <!-- /layers -->
    python scripts/layers_doc.py --check    # exit 1 when the page's block is not what this would write
"""

from __future__ import annotations

import sys
from pathlib import Path

from generated_docs import write_or_check

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "architecture.md"
sys.path.insert(0, str(REPO))

from kd_bert.layers import markdown  # noqa: E402


def main() -> int:
    return write_or_check(PAGE, "layers", markdown(), "--check" in sys.argv[1:], "python scripts/layers_doc.py")


if __name__ == "__main__":
    sys.exit(main())
