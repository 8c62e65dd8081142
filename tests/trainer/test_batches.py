import numpy as np

from sentiment_core.text import Preprocessor
from trainer.batches import BucketedBatches

PRE = Preprocessor(vocab=tuple("abcdefghij"), max_len=30)
SEQUENCES = [[1 + (i % 9)] * (1 + (i * 7) % 30) for i in range(100)]
LABELS = [i % 2 for i in range(100)]


def rows_of(batches: BucketedBatches) -> list[list[int]]:
    return [rows.tolist() for rows in batches.plan()]


def test_every_review_is_in_exactly_one_batch_each_epoch() -> None:
    batches = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=3)
    first, second = rows_of(batches), rows_of(batches)
    assert len(first) == len(batches) == 13
    for epoch in (first, second):
        assert sorted(i for rows in epoch for i in rows) == list(range(100))
    assert first != second


def test_masked_batches_are_padded_to_their_longest_review() -> None:
    batches = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=3)
    widths = []
    for rows in batches.plan():
        x, y = batches.batch(rows)
        assert x.shape[1] == max(len(SEQUENCES[i]) for i in rows)
        assert y.tolist() == [LABELS[i] for i in rows]
        assert x[:, 0].all()  # right padding: every row starts with a real token
        widths.append(x.shape[1])
    assert np.mean(widths) < 30  # bucketing keeps batches narrower than the window


def test_fixed_width_batches_use_the_full_window() -> None:
    batches = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=3, width=30)
    assert {x.shape[1] for x, _ in batches} == {30}


def test_the_tf_dataset_yields_batches_of_any_width() -> None:
    batches = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=3)
    shapes = [tuple(x.shape) for x, _ in batches.dataset()]
    assert len(shapes) == 13 and len({width for _, width in shapes}) > 1


def test_the_same_seed_gives_the_same_batches() -> None:
    first = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=5)
    second = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=5)
    other = BucketedBatches(SEQUENCES, LABELS, PRE, batch_size=8, seed=6)
    assert rows_of(first) == rows_of(second) != rows_of(other)
