import numpy as np

from sentiment_core.text import Preprocessor
from trainer.model import PRESETS
from trainer.ngrams import blend, fit_regression, regression_scores, surely_labeled

PRESET = PRESETS["tiny"]


def test_the_regression_learns_which_ngrams_tell_the_class() -> None:
    texts = ["alpha film", "alpha story", "beta film", "beta story"] * 3
    labels = [1, 1, 0, 0] * 3
    pre = Preprocessor.fit(texts, num_words=PRESET.num_words, max_len=PRESET.max_len)
    table, bias = fit_regression(PRESET, pre, (pre.encode(texts), labels), seed=1)
    scores = regression_scores(PRESET, table, pre, pre.encode(["alpha", "beta", "film"]))[:, 0]
    assert scores[0] > 1 > -1 > scores[1]  # logits far from 0 for the telling words
    assert abs(scores[2] + bias) < 0.5 * min(scores[0], -scores[1])  # and near it for the rest


def test_the_blend_weighs_the_model_that_knows_more() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    sign = 2 * labels - 1
    informed = 3 * sign + rng.normal(size=400)  # right nearly always
    noise = rng.normal(size=400)  # knows nothing
    weights = blend(informed, noise, labels.tolist())
    assert weights[0] > 1 and abs(weights[1]) < 0.5 * weights[0]
    assert blend(noise, informed, labels.tolist())[1] > 1


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


def test_self_training_reads_labels_where_the_regression_is_sure_and_learns_new_words() -> None:
    texts = ["alpha film", "alpha story", "beta film", "beta story"] * 3
    labels = [1, 1, 0, 0] * 3
    pre = Preprocessor.fit(texts + ["zorg"], num_words=PRESET.num_words, max_len=PRESET.max_len)
    regression = fit_regression(PRESET, pre, (pre.encode(texts), labels), seed=1)
    unlabeled = ["alpha alpha zorg", "beta beta", "film story", "words it lacks"] * 3
    sequences, read = surely_labeled(PRESET, pre, regression, unlabeled)
    assert read == [1, 0] * 3 and sequences == pre.encode(unlabeled[:2]) * 3

    def zorg(regression) -> float:
        return regression_scores(PRESET, regression[0], pre, pre.encode(["zorg"]))[0, 0]

    relearned = fit_regression(PRESET, pre, (pre.encode(texts) + sequences, labels + read), seed=1)
    assert zorg(regression) == 0 and zorg(relearned) > 0.5
