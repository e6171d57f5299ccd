"""Transfer-set augmentation (Tang et al., 2019; TinyBERT): perturbed copies of training sentences
that the teacher labels with soft labels. A copy has no gold label, so only the teacher's terms
learn from it.

Each copy starts from the sentence's words and, word by word, masks it (the tokenizer's mask token),
swaps it with the next word, or deletes it, each with its own probability; then, with probability
P_NGRAM, keeps only a random n-gram of 1 to 5 words. A copy equal to its sentence is drawn again
(a few tries), since it would teach nothing new. The same seed gives the same copies, so the
teacher's logits for them are cached like any other training set's.
"""

from __future__ import annotations

import random

P_MASK, P_SWAP, P_DELETE, P_NGRAM = 0.1, 0.1, 0.1, 0.25
MAX_NGRAM = 5
TRIES = 5


def perturb(words: list[str], rng: random.Random, mask_token: str) -> list[str]:
    out = []
    i = 0
    while i < len(words):
        roll = rng.random()
        if roll < P_MASK:
            out.append(mask_token)
        elif roll < P_MASK + P_SWAP and i + 1 < len(words):
            out += [words[i + 1], words[i]]
            i += 1
        elif roll < P_MASK + P_SWAP + P_DELETE:
            pass  # deleted
        else:
            out.append(words[i])
        i += 1
    if out and rng.random() < P_NGRAM:
        n = rng.randint(1, min(MAX_NGRAM, len(out)))
        start = rng.randint(0, len(out) - n)
        out = out[start : start + n]
    return out or list(words[:1])


def augment(texts: list[str], copies: int, seed: int, mask_token: str) -> list[str]:
    """`copies` perturbed versions of each text, in order: text 0's copies, then text 1's, ..."""
    rng = random.Random(seed)
    result = []
    for text in texts:
        words = text.split()
        for _ in range(copies):
            for _ in range(TRIES):
                candidate = " ".join(perturb(words, rng, mask_token))
                if candidate != text:
                    break
            result.append(candidate)
    return result
