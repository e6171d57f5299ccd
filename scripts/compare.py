"""Print evaluate.py results side by side: python scripts/compare.py teacher=t.json student=s.json"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_common.metrics import format_comparison  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        sys.exit("usage: python scripts/compare.py NAME=metrics.json [NAME=metrics.json ...]")
    results = {}
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        with open(path, encoding="utf-8") as f:
            results[name] = json.load(f)
    print(format_comparison(results))
