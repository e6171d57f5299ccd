"""Teacher logits are computed once, reused while nothing they depend on changes, and exact."""

import json


def test_padding_efficiency_is_logged_per_epoch(trained_teacher):
    history = json.loads((trained_teacher / "metrics.json").read_text())["history"]
    assert all(0 < h["padding_efficiency"] <= 1 and h["peak_memory_mb"] > 0 for h in history)
