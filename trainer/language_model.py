"""A recurrent language model learned from unlabeled reviews, whose embedding and LSTM start the
classifier's (Dai & Le 2015; Howard & Ruder 2018): the classifier's LSTM then begins already
able to read movie reviews, and the labels only have to teach it what they mean.

The reviews, each followed by a boundary token, run as parallel streams; the model reads them a
window at a time and carries its state from one window to the next (truncated backpropagation
through time), so it learns to read whole reviews. Its output is tied to its embedding and scored
with a sampled softmax, so a step costs a few hundred output classes instead of the vocabulary.

A second model reads the reviews end to start, with the first one's word vectors kept fixed: it
starts a bidirectional classifier's backward LSTM, which reads the same embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

BOUNDARY, UNKNOWN = 0, 1  # word ids; the vocabulary's words start at 2, most frequent first
SAMPLED = 512  # output classes a step's sampled softmax draws, of the whole vocabulary
LEARNING_RATE = 2e-3  # Adam's, reached after WARMUP steps, then decayed to a twentieth
WARMUP = 50
INPUT_DROPOUT, OUTPUT_DROPOUT = 0.1, 0.25
LSTM_WEIGHTS = ("kernel", "recurrent_kernel", "bias")  # Keras' LSTM cell, in its order


def streams(sequences: Sequence[Sequence[int]], batch: int, seed: int) -> np.ndarray:
    """The reviews in a seeded random order, each followed by BOUNDARY, end to end, cut into
    `batch` parallel streams: int32 [batch, length]."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(sequences))
    flat = np.concatenate([[*sequences[i], BOUNDARY] for i in order]).astype(np.int32)
    length = len(flat) // batch
    return flat[: batch * length].reshape(batch, length)


def tokens_per_epoch(sequences: Sequence[Sequence[int]], batch: int, window: int) -> int:
    """How many next words an epoch predicts: whole windows of every stream."""
    length = sum(len(s) + 1 for s in sequences) // batch
    return max(length - 1, 0) // window * window * batch


class LanguageModel:
    def __init__(
        self, embedding: np.ndarray, units: int, seed: int, steps: int, learn_embedding: bool = True
    ) -> None:
        """`embedding` starts the table [words, dim] (and stays as it is unless
        `learn_embedding`); `steps` is the whole run's, which the learning rate decays over."""
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        words, dim = embedding.shape
        self.embedding = keras.layers.Embedding(words, dim)
        self.lstm = keras.layers.LSTM(units, return_sequences=True, return_state=True)
        self.project = keras.layers.Dense(dim)  # to the embedding's width, which scores words
        self.embedding.build((None, None))
        self.lstm.build((None, None, dim))
        self.project.build((None, units))
        self.embedding.set_weights([embedding])
        self.bias = tf.Variable(tf.zeros([words]))
        self.input_dropout = keras.layers.Dropout(INPUT_DROPOUT, seed=seed)
        self.output_dropout = keras.layers.Dropout(OUTPUT_DROPOUT, seed=seed)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(steps, 1), alpha=0.05, warmup_target=LEARNING_RATE, warmup_steps=WARMUP
        )
        self.optimizer = keras.optimizers.Adam(schedule, global_clipnorm=1.0)
        self.variables = [
            *(self.embedding.trainable_variables if learn_embedding else []),
            *self.lstm.trainable_variables,
            *self.project.trainable_variables,
            self.bias,
        ]
        self.optimizer.build(self.variables)
        self.sampled = min(SAMPLED, words - 1)
        self._step = tf.function(self._train_step)

    def _train_step(self, window: Any, h: Any, c: Any) -> Any:
        import tensorflow as tf

        inputs, targets = window[:, :-1], window[:, 1:]
        with tf.GradientTape() as tape:
            x = self.input_dropout(self.embedding(inputs), training=True)
            outputs, h, c = self.lstm(x, initial_state=[h, c])
            outputs = self.output_dropout(outputs, training=True)
            losses = tf.nn.sampled_softmax_loss(
                self.embedding.embeddings,
                self.bias,
                tf.reshape(tf.cast(targets, tf.int64), [-1, 1]),
                self.project(tf.reshape(outputs, [-1, outputs.shape[-1]])),
                num_sampled=self.sampled,
                num_classes=self.bias.shape[0],
            )
            loss = tf.reduce_mean(losses)
        gradients = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
        return loss, h, c

    def train_epoch(
        self,
        sequences: Sequence[Sequence[int]],
        batch: int,
        window: int,
        seed: int,
        progress: Callable[[int], None],
    ) -> float:
        """One pass over the reviews in a seeded order; returns the mean loss. `progress` gets
        the words each step predicted."""
        import numpy as np
        import tensorflow as tf

        data = streams(sequences, batch, seed)
        h = c = tf.zeros([batch, self.lstm.units])
        losses = []
        for start in range(0, data.shape[1] - window, window):
            loss, h, c = self._step(data[:, start : start + window + 1], h, c)
            losses.append(float(loss))
            progress(batch * window)
        return float(np.mean(losses)) if losses else float("nan")

    def weights(self) -> dict[str, np.ndarray]:
        """Everything a resumed run needs, the optimizer's moments and step included."""
        import numpy as np

        cell = dict(zip(LSTM_WEIGHTS, self.lstm.get_weights(), strict=True))
        kernel, bias = self.project.get_weights()
        moments = {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(self.optimizer.variables)}
        return (
            cell
            | moments
            | {
                "embedding": self.embedding.get_weights()[0],
                "project_kernel": kernel,
                "project_bias": bias,
                "softmax_bias": self.bias.numpy(),
            }
        )

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.embedding.set_weights([weights["embedding"]])
        self.lstm.set_weights([weights[name] for name in LSTM_WEIGHTS])
        self.project.set_weights([weights["project_kernel"], weights["project_bias"]])
        self.bias.assign(weights["softmax_bias"])
        for i, variable in enumerate(self.optimizer.variables):
            variable.assign(weights[f"optimizer_{i}"])
