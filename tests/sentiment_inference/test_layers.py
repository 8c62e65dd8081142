import numpy as np

from sentiment_inference.layers import NgramIds


def test_ngram_ids_keep_unigrams_and_hash_bigrams_away_from_padding() -> None:
    layer = NgramIds(num_words=10, buckets=7)
    ids = np.asarray(layer(np.array([[0, 0, 3, 4, 5]], dtype="int32")))
    prime = NgramIds.PRIME
    assert ids.tolist() == [
        [0, 0, 3, 4, 5, 0, 0, 10 + (3 * prime + 4) % 7, 10 + (4 * prime + 5) % 7]
    ]
    assert layer.compute_output_shape((None, 5)) == (None, 9)


def test_ngram_ids_round_trip_through_the_config() -> None:
    layer = NgramIds(num_words=10, buckets=7)
    clone = NgramIds.from_config(layer.get_config())
    assert (clone.num_words, clone.buckets) == (10, 7)
