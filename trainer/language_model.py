"""A recurrent language model learned from unlabeled reviews, whose embedding and LSTM start the
classifier's (Dai & Le 2015; Howard & Ruder 2018): the classifier's LSTM then begins already
able to read movie reviews, and the labels only have to teach it what they mean.

The model reads windows of a review and predicts each next word, with a sampled softmax so that
a step costs a few hundred output classes instead of the whole vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

WINDOW = 64  # tokens a training sequence reads; the LSTM's state starts afresh in each window
SAMPLED = 512  # output classes a step's sampled softmax draws, of the whole vocabulary
BATCH = 128
LEARNING_RATE = 1e-3
PAD, UNKNOWN = 0, 1  # word ids; the vocabulary's words start at 2
LSTM_WEIGHTS = ("kernel", "recurrent_kernel", "bias")  # Keras' LSTM cell, in its order


def windows(sequences: Sequence[Sequence[int]], width: int = WINDOW) -> np.ndarray:
    """Every review cut into consecutive windows of `width` + 1 ids (inputs and next-word
    targets overlap by one), right-padded with PAD: int32 [windows, width + 1]."""
    import numpy as np

    rows = []
    for ids in sequences:
        for start in range(0, max(len(ids) - 1, 0), width):
            chunk = ids[start : start + width + 1]
            rows.append(list(chunk) + [PAD] * (width + 1 - len(chunk)))
    return np.array(rows, dtype=np.int32).reshape(-1, width + 1)


class LanguageModel:
    def __init__(self, embedding: np.ndarray, units: int, seed: int) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        words, dim = embedding.shape
        self.embedding = keras.layers.Embedding(words, dim)
        self.lstm = keras.layers.LSTM(units, return_sequences=True)
        self.embedding.build((None, None))
        self.lstm.build((None, None, dim))
        self.embedding.set_weights([embedding])
        self.softmax_w = tf.Variable(tf.random.normal([words, units], stddev=0.05, seed=seed))
        self.softmax_b = tf.Variable(tf.zeros([words]))
        self.sampled = min(SAMPLED, words - 1)
        self.optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.variables = [
            *self.embedding.trainable_variables,
            *self.lstm.trainable_variables,
            self.softmax_w,
            self.softmax_b,
        ]
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, batch: Any) -> Any:
        import tensorflow as tf

        inputs, targets = batch[:, :-1], batch[:, 1:]
        with tf.GradientTape() as tape:
            states = self.lstm(self.embedding(inputs))
            losses = tf.nn.sampled_softmax_loss(
                self.softmax_w,
                self.softmax_b,
                tf.reshape(tf.cast(targets, tf.int64), [-1, 1]),
                tf.reshape(states, [-1, states.shape[-1]]),
                num_sampled=self.sampled,
                num_classes=self.softmax_w.shape[0],
            )
            real = tf.cast(tf.reshape(targets, [-1]) != PAD, losses.dtype)
            loss = tf.reduce_sum(losses * real) / tf.maximum(tf.reduce_sum(real), 1.0)
        gradients = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
        return loss

    def train_epoch(self, data: np.ndarray, seed: int, progress: Callable[[int], None]) -> float:
        """One pass over the windows in a seeded random order; returns the mean loss. `progress`
        gets the tokens each batch read."""
        import numpy as np

        order = np.random.default_rng(seed).permutation(len(data))
        losses = []
        for start in range(0, len(order), BATCH):
            batch = data[order[start : start + BATCH]]
            losses.append(float(self._step(batch)))
            progress(int((batch[:, 1:] != PAD).sum()))
        return float(np.mean(losses)) if losses else float("nan")

    def weights(self) -> dict[str, np.ndarray]:
        cell = dict(zip(LSTM_WEIGHTS, self.lstm.get_weights(), strict=True))
        return cell | {
            "embedding": self.embedding.get_weights()[0],
            "softmax_w": self.softmax_w.numpy(),
            "softmax_b": self.softmax_b.numpy(),
        }

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.embedding.set_weights([weights["embedding"]])
        self.lstm.set_weights([weights[name] for name in LSTM_WEIGHTS])
        self.softmax_w.assign(weights["softmax_w"])
        self.softmax_b.assign(weights["softmax_b"])
