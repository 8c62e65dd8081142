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
    With `unique`, an id that occurs again is 0 after its first occurrence: the bag is then the
    review's set of n-grams, as a binary feature vector has them.
    """

    PRIME = 1_000_003  # spreads bigrams over the buckets; fixed, as saved models depend on it

    def __init__(self, num_words: int, buckets: int, unique: bool = False, **kwargs: object):
        super().__init__(**kwargs)
        self.num_words = num_words
        self.buckets = buckets
        self.unique = unique

    def call(self, tokens):
        tokens = ops.cast(tokens, "int64")
        left, right = tokens[:, :-1], tokens[:, 1:]
        hashed = self.num_words + (left * self.PRIME + right) % self.buckets
        bigrams = ops.where((left > 0) & (right > 0), hashed, ops.zeros_like(hashed))
        ids = ops.concatenate([tokens, bigrams], axis=1)
        if self.unique:
            order = ops.argsort(ids, axis=1)
            ranked = ops.take_along_axis(ids, order, axis=1)
            first = ops.concatenate(
                [ops.ones_like(ranked[:, :1], "bool"), ranked[:, 1:] != ranked[:, :-1]], axis=1
            )
            keep = ops.take_along_axis(first, ops.argsort(order, axis=1), axis=1)
            ids = ops.where(keep, ids, ops.zeros_like(ids))
        return ops.cast(ids, "int32")

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape
        return (batch, None if steps is None else 2 * steps - 1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_words": self.num_words,
            "buckets": self.buckets,
            "unique": self.unique,
        }


@keras.saving.register_keras_serializable(package="sentiment")
class SqrtPooling(keras.layers.Layer):
    """[batch, time, width] -> [batch, width]: the sum over the unmasked steps divided by the
    square root of their number. Over a bag of unique n-grams with a width-1 table, that is a
    linear model on the review's L2-normalised binary n-gram vector."""

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], "bool")
        present = ops.cast(mask, inputs.dtype)[..., None]
        count = ops.sum(present, axis=1)
        return ops.sum(inputs * present, axis=1) / ops.sqrt(ops.maximum(count, 1.0))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
