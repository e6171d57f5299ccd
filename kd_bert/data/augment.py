"""Transfer-set augmentation (Tang et al., 2019; TinyBERT): perturbed copies of training sentences
that the teacher labels with soft labels. A copy has no gold label, so only the teacher's terms
learn from it.

Each copy starts from the sentence's words and, word by word, masks it (the tokenizer's mask token),
swaps it with the next word, or deletes it, each with its own probability; then, with probability
P_NGRAM, keeps only a random n-gram of 1 to 5 words. A copy equal to its sentence is drawn again
(a few tries), since it would teach nothing new. The same seed gives the same copies, so the
teacher's logits for them are cached like any other training set's.

With a replacement chance (--augment_replace), a copy instead swaps each word, with that chance, for
one of its K nearest neighbours in the teacher's word-embedding table (TinyBERT's word replacement, which
draws from GloVe and BERT's masked-LM; the teacher's input embeddings serve with no extra model:
"terrible" -> horrible, awful, dreadful; "boring" -> dull, bored, exciting). A neighbour may flip the
sentiment; the teacher's soft label says so, which is what a copy is for. Nothing is masked, swapped
or deleted then; the n-gram sampling stays.
"""

from __future__ import annotations

import random

P_MASK, P_SWAP, P_DELETE, P_NGRAM = 0.1, 0.1, 0.1, 0.25
MAX_NGRAM = 5
TRIES = 5
NEIGHBOURS = 15  # TinyBERT's K
MIN_WORD = 2  # shorter words (and punctuation) are never replaced


def perturb(words: list[str], rng: random.Random, mask_token: str, neighbours: dict[str, list[str]] | None = None,
            p_replace: float = 0.0) -> list[str]:
    out = []
    i = 0
    while i < len(words):
        if p_replace:  # TinyBERT's copies: words replaced, nothing masked, swapped or deleted
            candidates = (neighbours or {}).get(words[i].lower())
            replace = candidates and rng.random() < p_replace
            out.append(_same_case(rng.choice(candidates), words[i]) if replace else words[i])
            i += 1
            continue
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


def _same_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() and like[1:].islower() else word


def augment(texts: list[str], copies: int, seed: int, mask_token: str, neighbours: dict[str, list[str]] | None = None,
            p_replace: float = 0.0) -> list[str]:
    """`copies` perturbed versions of each text, in order: text 0's copies, then text 1's, ..."""
    rng = random.Random(seed)
    result = []
    for text in texts:
        words = text.split()
        for _ in range(copies):
            for _ in range(TRIES):
                candidate = " ".join(perturb(words, rng, mask_token, neighbours, p_replace))
                if candidate != text:
                    break
            result.append(candidate)
    return result


def word_neighbours(texts: list[str], tokenizer, embeddings, k: int = NEIGHBOURS) -> dict[str, list[str]]:
    """Each word of the texts that is one whole token of the tokenizer -> its k nearest whole-word tokens
    by the cosine of their rows in `embeddings` (the model's input table, (vocab, dim)). Only alphabetic
    words of MIN_WORD letters or more take part, on both sides."""
    import torch

    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_tokens)

    def is_word(token: str) -> bool:
        return token.isalpha() and len(token) >= MIN_WORD and token not in special

    pool = sorted((token, i) for token, i in vocab.items() if is_word(token) and i < len(embeddings))
    used = sorted({w.lower() for text in texts for w in text.split()} & {token for token, _ in pool})
    if not used:
        return {}
    table = torch.nn.functional.normalize(embeddings.detach().float(), dim=-1)  # (vocab, dim)
    pool_ids = torch.tensor([i for _, i in pool])
    candidates = table[pool_ids]  # (pool, dim)
    names = [token for token, _ in pool]
    result = {}
    for start in range(0, len(used), 1024):  # (1024, pool) similarities at a time
        chunk = used[start:start + 1024]
        sims = table[torch.tensor([vocab[w] for w in chunk])] @ candidates.T
        top = sims.topk(k + 1, dim=-1).indices.tolist()
        for word, row in zip(chunk, top):
            result[word] = [names[j] for j in row if names[j] != word][:k]
    return result
