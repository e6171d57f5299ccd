"""Transfer-set augmentation: seeded copies of the training sentences, made only by masking, swaps,
deletions and n-grams."""

from kd_bert.data.augment import augment


def test_augment_is_seeded_and_perturbs():
    texts = ["a quietly moving film about loss", "not good at all", "fine"]
    copies = augment(texts, 3, seed=7, mask_token="[MASK]")
    assert copies == augment(texts, 3, seed=7, mask_token="[MASK]")
    assert copies != augment(texts, 3, seed=8, mask_token="[MASK]")
    assert len(copies) == 9
    assert all(c.strip() for c in copies)
    assert sum(c not in texts for c in copies[:6]) == 6  # multi-word sentences always change
    vocab = set(" ".join(texts).split()) | {"[MASK]"}
    assert all(set(c.split()) <= vocab for c in copies)  # only masking, swaps, deletions, n-grams


class _Vocab:
    """The one thing word_neighbours asks of a tokenizer: its vocabulary and special tokens."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.all_special_tokens = ["[PAD]"]

    def get_vocab(self):
        return {t: i for i, t in enumerate(self.tokens)}


def test_word_neighbours_are_the_nearest_rows_of_the_embedding_table():
    import torch

    from kd_bert.data.augment import word_neighbours

    tokens = ["[PAD]", "good", "great", "fine", "bad", "awful", "##ly", "x", "film"]
    table = torch.tensor([[0, 0, 1], [1, 0, 0], [0.9, 0.1, 0], [0.8, 0.3, 0], [-1, 0, 0], [-0.9, -0.2, 0],
                          [1, 0, 0], [1, 0, 0], [0, 1, 0]])
    got = word_neighbours(["a good film", "awful"], _Vocab(tokens), table, k=2)
    # Only whole alphabetic words of 2+ letters, never the word itself; "a" is not in the vocabulary.
    assert got == {"good": ["great", "fine"], "awful": ["bad", "film"], "film": ["fine", "great"]}


def test_replacement_copies_swap_words_for_their_neighbours_only():
    neighbours = {"good": ["great"], "film": ["movie"]}
    texts = ["a good film", "Good film indeed"]
    copies = augment(texts, 20, seed=3, mask_token="[MASK]", neighbours=neighbours, p_replace=0.5)
    assert copies == augment(texts, 20, seed=3, mask_token="[MASK]", neighbours=neighbours, p_replace=0.5)
    words = {w for c in copies for w in c.split()}
    assert {"great", "movie", "Great"} <= words  # each replaced somewhere, in the word's case
    assert "[MASK]" not in words and words <= {"a", "good", "film", "Good", "indeed", "great", "movie", "Great"}
    # The n-gram sampling stays; nothing else reorders: every copy keeps the words' order.
    order = {w: i for i, w in enumerate(["a", "good", "Good", "great", "Great", "film", "movie", "indeed"])}
    assert all([order[w] for w in c.split()] == sorted(order[w] for w in c.split()) for c in copies)
