"""Running a classifier over an evaluation loader: logits back in the split's own order; and what a
model's logits predict, as evaluate.py prints and writes it: the top-k labels or the score of a text, and
the predictions file."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batching import MODEL
from .metrics import softmax


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


def top_labels(texts: list[str], logits: np.ndarray, names: list[str], top_k: int) -> list[dict]:
    """The top_k labels of each text and their probabilities, the likeliest first."""
    probs = softmax(logits)
    k = min(top_k, probs.shape[1])
    predictions = []
    for text, row in zip(texts, probs):
        best = np.argsort(-row, kind="stable")[:k]
        predictions.append({"text": text, "top_k": [{"label": names[i], "probability": float(row[i])} for i in best]})
    return predictions


def scored_texts(texts: list[str], logits: np.ndarray) -> list[dict]:
    """A regression model's one output is the prediction itself: no softmax, no top-k."""
    return [{"text": text, "score": float(row[0])} for text, row in zip(texts, logits)]


def predictions_tsv(index: list, predictions: list[str]) -> str:
    """GLUE submission form: a header, then index<TAB>prediction (as the task formats it: a label id, or a
    score for a regression model), one line per example."""
    return "\n".join(["index\tprediction"] + [f"{i}\t{p}" for i, p in zip(index, predictions)]) + "\n"
