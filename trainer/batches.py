"""Length-bucketed training batches: each batch is padded only to its longest review."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sentiment_core.text import Preprocessor

BUCKET_SPAN = 50  # batches per sorting window: enough to group lengths, still well shuffled


class BucketedBatches:
    """Training batches, reshuffled on every pass, reproducibly from `seed`.

    With `width=None` (models that mask padding) reviews are sorted by length within windows of
    BUCKET_SPAN batches, so each batch holds reviews of similar length and is right-padded only
    to its longest one. A fixed `width` gives the classic batches: plain shuffle, left-padded to
    the full window.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        labels: Sequence[int],
        preprocessor: Preprocessor,
        batch_size: int,
        seed: int,
        width: int | None = None,
    ) -> None:
        self.sequences = sequences
        self.labels = np.asarray(labels, dtype=np.float32)
        self.preprocessor = preprocessor
        self.batch_size = batch_size
        self.width = width
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.sequences) // self.batch_size)

    def plan(self) -> list[np.ndarray]:
        """The row indices of each batch for one pass; every call shuffles anew."""
        order = self.rng.permutation(len(self.sequences))
        if self.width is None:
            span = self.batch_size * BUCKET_SPAN
            lengths = np.array([len(s) for s in self.sequences])
            for start in range(0, len(order), span):
                window = order[start : start + span]
                order[start : start + span] = window[np.argsort(lengths[window], kind="stable")]
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seqs = [self.sequences[i] for i in rows]
        if self.width:
            tokens = self.preprocessor.pad(seqs, self.width)
        else:
            tokens = self.preprocessor.pad(seqs, max(1, max(len(s) for s in seqs)), right=True)
        return tokens, self.labels[rows]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.batch(rows) for rows in self.plan())

    def dataset(self) -> Any:
        """A tf.data view that Keras can fit on: batches of any width, a new shuffle per epoch."""
        import tensorflow as tf

        signature = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.float32))
        data = tf.data.Dataset.from_generator(self.__iter__, output_signature=signature)
        return data.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)
