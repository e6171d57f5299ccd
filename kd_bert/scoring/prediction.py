"""Running a classifier over an evaluation loader: logits back in the split's own order."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batching import MODEL


def predict_logits(model, loader, accelerator, inputs: str = MODEL) -> np.ndarray:
    """(num_examples, num_labels) float32 logits, row i for example i of the split.

    Batches arrive in length order; each carries its examples' rows, and gather_for_metrics drops
    the duplicates that even sharding across processes adds, so each example counts once.
    """
    was_training = model.training
    model.eval()
    rows, logits = [], []
    with torch.inference_mode():
        for batch in loader:
            out = model(**batch[inputs]).logits.float()  # (bs, num_labels)
            batch_rows, out = accelerator.gather_for_metrics((batch["row"], out))
            rows.append(batch_rows.cpu())
            logits.append(out.cpu())
    model.train(was_training)
    rows_t, logits_t = torch.cat(rows), torch.cat(logits)
    ordered = torch.empty_like(logits_t)
    ordered[rows_t] = logits_t
    return ordered.numpy()
