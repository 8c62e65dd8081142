import numpy as np

from sentiment_inference.layers import NgramIds, SqrtPooling


def test_ngram_ids_keep_unigrams_and_hash_bigrams_away_from_padding() -> None:
    layer = NgramIds(num_words=10, buckets=7)
    ids = np.asarray(layer(np.array([[0, 0, 3, 4, 5]], dtype="int32")))
    prime = NgramIds.PRIME
    assert ids.tolist() == [
        [0, 0, 3, 4, 5, 0, 0, 10 + (3 * prime + 4) % 7, 10 + (4 * prime + 5) % 7]
    ]
    assert layer.compute_output_shape((None, 5)) == (None, 9)


def test_ngram_ids_round_trip_through_the_config() -> None:
    layer = NgramIds(num_words=10, buckets=7, unique=True)
    clone = NgramIds.from_config(layer.get_config())
    assert (clone.num_words, clone.buckets, clone.unique) == (10, 7, True)


def test_unique_ngram_ids_keep_each_ngram_once() -> None:
    layer = NgramIds(num_words=10, buckets=7, unique=True)
    ids = np.asarray(layer(np.array([[3, 4, 3, 4, 3, 0], [5, 5, 0, 0, 0, 0]], dtype="int32")))
    assert [sorted(row[row > 0].tolist()) for row in ids] == [
        sorted([3, 4, 10 + (3 * NgramIds.PRIME + 4) % 7, 10 + (4 * NgramIds.PRIME + 3) % 7]),
        [5, 10 + (5 * NgramIds.PRIME + 5) % 7],
    ]
    assert ids[0, :2].tolist() == [3, 4]  # the first occurrence is the one kept


def test_sqrt_pooling_divides_the_masked_sum_by_the_root_of_its_size() -> None:
    values = np.array([[[1.0], [2.0], [6.0], [9.0]]], dtype="float32")
    mask = np.array([[True, True, True, False]])
    pooled = np.asarray(SqrtPooling()(values, mask=mask))
    np.testing.assert_allclose(pooled, [[9.0 / np.sqrt(3.0)]], rtol=1e-6)
