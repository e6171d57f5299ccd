"""Shared code for the three entry scripts: data, batching, models, losses, the training loop, metrics."""

__version__ = "0.1.0"
