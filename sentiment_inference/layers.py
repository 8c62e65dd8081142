"""Custom Keras layers that model artifacts refer to; importing this module registers them.

Imported only where a model is built or loaded (it imports Keras).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sentiment")
class NgramIds(keras.layers.Layer):
    """Token ids -> the ids of the review's unigrams and hashed word bigrams, for a bag-of-ngrams
    embedding. Computed inside the model, so the artifact needs no second vocabulary.

    Unigram i keeps id i; the bigram (a, b) gets `num_words + (a * PRIME + b) % buckets`.
    Padding (0), and any bigram that touches it, maps to 0 so an Embedding(mask_zero) skips it.
    """

    PRIME = 1_000_003  # spreads bigrams over the buckets; fixed, as saved models depend on it

    def __init__(self, num_words: int, buckets: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.num_words = num_words
        self.buckets = buckets

    def call(self, tokens):
        tokens = ops.cast(tokens, "int64")
        left, right = tokens[:, :-1], tokens[:, 1:]
        hashed = self.num_words + (left * self.PRIME + right) % self.buckets
        bigrams = ops.where((left > 0) & (right > 0), hashed, ops.zeros_like(hashed))
        return ops.cast(ops.concatenate([tokens, bigrams], axis=1), "int32")

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape
        return (batch, None if steps is None else 2 * steps - 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_words": self.num_words, "buckets": self.buckets}
