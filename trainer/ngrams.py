"""The n-gram regression that a blended preset serves beside its LSTM, and the blend of the two
(see `Preset.ngram_buckets`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sentiment_core.text import Preprocessor
from trainer.model import Preset

ID_ROWS = 512  # reviews per pass through the n-gram id layer
# Self-training learns from the unlabeled reviews the regression gives at least this
# probability of the label it reads in them.
SURE = 0.9


def bag(preset: Preset, preprocessor: Preprocessor, sequences: Sequence[Sequence[int]]) -> Any:
    """The reviews' n-gram features exactly as the served branch reads them: a sparse
    [reviews, ids] matrix of each review's set of n-grams, L2-normalised."""
    from scipy import sparse

    from sentiment_inference.layers import NgramIds

    ids = NgramIds(preset.num_words, preset.ngram_buckets, unique=True)
    rows: list[np.ndarray] = [np.empty(0, np.int64)] * len(sequences)
    order = np.argsort([len(s) for s in sequences], kind="stable")
    for start in range(0, len(order), ID_ROWS):
        chunk = order[start : start + ID_ROWS]
        width = max(1, len(sequences[chunk[-1]]))
        batch = preprocessor.pad([sequences[i] for i in chunk], width, right=True)
        for row, found in zip(chunk, np.asarray(ids(batch)), strict=True):
            rows[row] = found[found > 0]
    sizes = np.array([len(r) for r in rows], dtype=np.int64)
    values = np.repeat(1 / np.sqrt(np.maximum(sizes, 1)), sizes)
    pointers = np.concatenate([[0], np.cumsum(sizes)])
    shape = (len(rows), preset.num_words + preset.ngram_buckets)
    return sparse.csr_matrix(
        (values, np.concatenate([np.empty(0, np.int64), *rows]), pointers), shape=shape
    )


def fit_regression(
    preset: Preset,
    preprocessor: Preprocessor,
    train: tuple[Sequence[Sequence[int]], Sequence[int]],
    seed: int,
) -> tuple[np.ndarray, float]:
    """Fit the logistic regression on the reviews' n-grams, each weighted by its log-count
    ratio between positive and negative reviews (NBSVM); returns the table the served model's
    n-gram branch holds (weight times ratio, per id) and the bias."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    features = bag(preset, preprocessor, train[0])
    labels = np.asarray(train[1])
    present = (features > 0).astype(np.float64)
    positive = 1 + np.asarray(present[labels == 1].sum(axis=0)).ravel()
    negative = 1 + np.asarray(present[labels == 0].sum(axis=0)).ravel()
    ratios = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    regression = LogisticRegression(C=preset.ngram_c, solver="liblinear", random_state=seed)
    regression.fit(features @ sparse.diags(ratios), labels)
    table = (regression.coef_[0] * ratios).astype(np.float32)[:, None]
    return table, float(regression.intercept_[0])


def regression_scores(
    preset: Preset,
    table: np.ndarray,
    preprocessor: Preprocessor,
    sequences: Sequence[Sequence[int]],
) -> np.ndarray:
    """The n-gram branch's score [reviews, 1] of each sequence under `table`."""
    return np.asarray(bag(preset, preprocessor, sequences) @ table, dtype=np.float32)


def surely_labeled(
    preset: Preset,
    preprocessor: Preprocessor,
    regression: tuple[np.ndarray, float],
    texts: Sequence[str],
) -> tuple[list[list[int]], list[int]]:
    """The sequences of the `texts` that `regression` (its table and bias) is sure of, each with
    the label it reads in it."""
    sequences = [sequence for sequence in preprocessor.encode(texts) if sequence]
    if not sequences:
        return [], []
    table, bias = regression
    logits = regression_scores(preset, table, preprocessor, sequences)[:, 0] + bias
    sure = np.flatnonzero(np.abs(logits) >= np.log(SURE / (1 - SURE)))
    return [sequences[i] for i in sure], [int(logits[i] > 0) for i in sure]


def blend(lstm_logits: np.ndarray, ngram_logits: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """The weights (LSTM, n-grams, bias) of a logistic regression on the two models' logits,
    which blends them."""
    from sklearn.linear_model import LogisticRegression

    regression = LogisticRegression().fit(np.stack([lstm_logits, ngram_logits], 1), labels)
    return np.append(regression.coef_[0], regression.intercept_[0])
