import numpy as np

from sentiment_core.text import Preprocessor
from trainer.model import PRESETS
from trainer.stacking import assign_folds, fit_regression, out_of_fold_scores, regression_scores

PRESET = PRESETS["tiny"]
# "alpha" means positive in one movie's reviews and negative in the other's, "beta" the reverse.
REVIEWS = [("alpha", 1), ("beta", 0)] * 3 + [("alpha", 0), ("beta", 1)] * 3
TEXTS = [f"{word} film" for word, _ in REVIEWS]
LABELS = [label for _, label in REVIEWS]
MOVIES = ["tt1"] * 6 + ["tt2"] * 6


def test_folds_keep_each_movie_whole() -> None:
    folds = assign_folds(MOVIES, len(MOVIES), 2, seed=3)
    assert len(set(folds[:6])) == len(set(folds[6:])) == 1 and folds[0] != folds[6]
    random_folds = assign_folds([], 12, 3, seed=3)
    assert sorted(np.bincount(random_folds)) == [4, 4, 4]


def test_a_review_is_scored_by_a_regression_that_never_saw_its_fold() -> None:
    pre = Preprocessor.fit(TEXTS, num_words=PRESET.num_words, max_len=PRESET.max_len)
    sequences = pre.encode(TEXTS)
    table, _ = fit_regression(PRESET, pre, (sequences[:6], LABELS[:6]), seed=1)
    in_sample = regression_scores(PRESET, table, pre, sequences[:6])[:, 0]
    assert ((in_sample > 0) == np.array(LABELS[:6])).all()  # it learns the reviews it sees
    folds = np.array([0] * 6 + [1] * 6)
    scores = out_of_fold_scores(PRESET, pre, sequences, LABELS, folds, seed=1)[:, 0]
    # Each movie's reviews are scored by the regression fitted on the other movie: all wrong.
    assert ((scores > 0) != np.array(LABELS)).all()


def test_the_served_branch_scores_exactly_what_the_regression_was_fitted_on() -> None:
    import keras

    from sentiment_inference.layers import NgramIds, SqrtPooling

    texts = ["alpha film film film alpha film", "beta", "film beta alpha film beta alpha"]
    pre = Preprocessor.fit(texts, num_words=PRESET.num_words, max_len=PRESET.max_len)
    sequences = pre.encode(texts)
    table = np.random.default_rng(0).normal(size=(PRESET.num_words + PRESET.ngram_buckets, 1))
    tokens = keras.Input(shape=(None,), dtype="int32")
    ids = NgramIds(PRESET.num_words, PRESET.ngram_buckets, unique=True)(tokens)
    bag = keras.layers.Embedding(len(table), 1, mask_zero=True, weights=[table])(ids)
    branch = keras.Model(tokens, SqrtPooling()(bag))
    served = np.asarray(branch(pre.pad(sequences, right=True)))
    np.testing.assert_allclose(regression_scores(PRESET, table, pre, sequences), served, rtol=1e-5)
