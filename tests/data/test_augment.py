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
