"""The n-gram regression that a stacked preset serves beside its LSTM, and the out-of-fold
scores its LSTM learns from (see `Preset.stack_folds`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sentiment_core.text import Preprocessor
from trainer.batches import BucketedBatches
from trainer.model import Preset

PREDICT_ROWS = 512  # reviews per forward pass when scoring with the regression


def _bag(preset: Preset, weights: np.ndarray | None = None) -> tuple[Any, Any, Any]:
    """tokens -> the mean of their n-grams' rows of a width-1 table (the regression's score
    before its bias); returns (inputs, score, the table's layer)."""
    import keras
    from keras import layers

    from sentiment_inference.layers import NgramIds

    inputs = keras.Input(shape=(None,), dtype="int32")
    ids = NgramIds(preset.num_words, preset.ngram_buckets)(inputs)
    table = layers.Embedding(preset.num_words + preset.ngram_buckets, 1, mask_zero=True)
    score = layers.GlobalAveragePooling1D()(table(ids))
    if weights is not None:
        table.set_weights([weights])
    return inputs, score, table


def fit_regression(
    preset: Preset,
    preprocessor: Preprocessor,
    train: tuple[Sequence[Sequence[int]], Sequence[int]],
    validation: tuple[Sequence[Sequence[int]], Sequence[int]] | None,
    seed: int,
) -> tuple[np.ndarray, float]:
    """Fit the logistic regression on n-grams; returns its weights times its coefficient (the
    table the served model's n-gram branch holds) and its bias. Stops on validation loss when
    given some."""
    import keras

    inputs, score, bag = _bag(preset)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(score))
    model.compile(
        optimizer=keras.optimizers.Adam(preset.ngram_learning_rate), loss="binary_crossentropy"
    )
    batches = BucketedBatches(*train, preprocessor, preset.batch_size, seed)
    held = validation and BucketedBatches(*validation, preprocessor, 256, seed).dataset()
    stop = keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    model.fit(
        batches.dataset(),
        validation_data=held,
        epochs=preset.ngram_epochs,
        callbacks=[stop] if held else [],
        shuffle=False,  # the batches reshuffle themselves every epoch
        verbose=0,
    )
    coefficient, bias = model.layers[-1].get_weights()
    return bag.get_weights()[0] * coefficient[0, 0], float(bias[0])


def regression_scores(
    preset: Preset,
    table: np.ndarray,
    preprocessor: Preprocessor,
    sequences: Sequence[Sequence[int]],
) -> np.ndarray:
    """The n-gram branch's score [reviews, 1] of each sequence under `table`."""
    import keras

    inputs, score, _ = _bag(preset, table)
    model = keras.Model(inputs, score)
    order = np.argsort([len(s) for s in sequences], kind="stable")
    scores = np.zeros((len(sequences), 1), dtype=np.float32)
    for start in range(0, len(order), PREDICT_ROWS):
        rows = order[start : start + PREDICT_ROWS]
        chunk = [sequences[i] for i in rows]
        batch = preprocessor.pad(chunk, max(1, len(chunk[-1])), right=True)
        scores[rows] = model(batch, training=False).numpy()
    return scores


def out_of_fold_scores(
    preset: Preset,
    preprocessor: Preprocessor,
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    folds: np.ndarray,
    validation: tuple[Sequence[Sequence[int]], Sequence[int]] | None,
    seed: int,
) -> np.ndarray:
    """Each training review's n-gram score from a regression fitted without its fold."""
    scores = np.zeros((len(sequences), 1), dtype=np.float32)
    for fold in np.unique(folds):
        fit_rows = np.flatnonzero(folds != fold).tolist()
        held_rows = np.flatnonzero(folds == fold).tolist()
        fit = ([sequences[i] for i in fit_rows], [labels[i] for i in fit_rows])
        table, _ = fit_regression(preset, preprocessor, fit, validation, seed)
        held = [sequences[i] for i in held_rows]
        scores[held_rows] = regression_scores(preset, table, preprocessor, held)
    return scores


def assign_folds(groups: Sequence[str], rows: int, folds: int, seed: int) -> np.ndarray:
    """A fold number per review: whole movies per fold when every movie is known, else rows
    at random."""
    rng = np.random.default_rng(seed)
    if groups and all(groups):
        movies = sorted(set(groups))
        fold_of = dict(zip(rng.permutation(movies).tolist(), range(len(movies)), strict=True))
        return np.array([fold_of[g] % folds for g in groups])
    return rng.permutation(rows) % folds
