"""The scorer's shortcuts (length sorting, padding trimmed for masked models) must not change
what the model says: its scores match Keras' own predict on full-window inputs."""

import random
import subprocess
import sys
import time

import numpy as np
import pytest

from sentiment_inference.scoring import ROW_BUCKETS, Scorer, bucket_width, cheapest_passes
from tests.factories import NEGATIVE, POSITIVE

TEXTS = POSITIVE + NEGATIVE + ["", "film", "a " * 80 + "wonderful", NEGATIVE[0] * 5]


def test_scores_match_keras_predict_on_the_full_window(trained) -> None:
    import keras

    preset, folder = trained
    scorer = Scorer.load("v", folder)
    assert scorer.masked is scorer.bucketed is (preset != "seed")  # tiny takes the fast path
    model = keras.saving.load_model(folder / "model.keras", compile=False)
    pre = scorer.preprocessor
    reference = model.predict(pre.pad(pre.encode(TEXTS)), verbose=0)[:, 0]
    scores = np.array(scorer.score(TEXTS))
    assert np.isfinite(scores).all()
    # Keras averages a review with no known word ("") over zero steps and answers NaN.
    known = np.isfinite(reference)
    assert known.sum() >= len(TEXTS) - 1
    np.testing.assert_allclose(scores[known], reference[known], atol=1e-5)


def test_scores_do_not_depend_on_batch_company(trained, monkeypatch) -> None:
    _, folder = trained
    scorer = Scorer.load("v", folder)
    together = scorer.score(TEXTS)
    alone = [scorer.score([text])[0] for text in TEXTS]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    monkeypatch.setattr("sentiment_inference.scoring.INFERENCE_BATCH", 3)
    np.testing.assert_allclose(scorer.score(TEXTS), together, atol=1e-5)


@pytest.mark.parametrize("count", [1, 3, 5, 23, 64, 100, 256, 1000])
def test_a_batch_is_cut_into_bucket_sized_passes_without_padding_rows(count) -> None:
    lengths = sorted(random.Random(count).choices(range(1, 800), k=count))
    sizes = cheapest_passes(lengths)
    assert sum(sizes) == count and set(sizes) <= set(ROW_BUCKETS)


def test_short_reviews_are_not_padded_to_a_long_ones_width() -> None:
    assert cheapest_passes([10] * 64) == [64]
    assert cheapest_passes([10] * 16 + [800] * 4) == [16, 4]
    assert cheapest_passes([10] * 60 + [800] * 4)[-1] == 4  # the long ones in a pass of their own


@pytest.mark.parametrize("trained", ["tiny", "tiny-forward"], indirect=True)  # the fast path
def test_a_shape_is_scored_at_once_and_compiled_in_the_background_for_the_next_batch(
    trained,
) -> None:
    scorer = Scorer.load("v", trained[1])
    scorer.warm_up(explanations=False)
    assert scorer.compiled == set() and scorer.forward.experimental_get_tracing_count() == 0
    first = scorer.score(TEXTS[:4])  # one pass of 4 reviews, by the fallback
    shape = (4, bucket_width(max(map(len, scorer.preprocessor.encode(TEXTS[:4])))))
    deadline = time.monotonic() + 60
    while shape not in scorer.compiled:
        assert time.monotonic() < deadline, "the shape was never compiled"
        time.sleep(0.05)
    assert scorer.forward.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(scorer.score(TEXTS[:4]), first, atol=1e-5)
    assert scorer.forward.experimental_get_tracing_count() == 1  # compiled, not traced again


@pytest.mark.parametrize("trained", ["tiny"], indirect=True)
def test_a_process_that_exits_while_a_shape_compiles_exits_cleanly(trained) -> None:
    script = (
        "import sys; from pathlib import Path; from sentiment_inference.scoring import Scorer;"
        "s = Scorer.load('v', Path(sys.argv[1])); s.warm_up(explanations=False);"
        "s.score(['a fine film'] * 4); assert s._to_compile, 'nothing compiling at exit'"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(trained[1])], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "could not compile" not in run.stderr  # Keras is torn down first: no false alarm


def test_an_empty_batch_scores_nothing(trained) -> None:
    assert Scorer.load("v", trained[1]).score([]) == []


def test_serving_switches_recurrent_dropout_off_without_changing_outputs(trained) -> None:
    import keras

    from sentiment_inference.scoring import for_inference

    preset, folder = trained
    model = keras.saving.load_model(folder / "model.keras", compile=False)
    served = for_inference(model)
    lstm = next(
        layer
        for layer in served.layers
        if isinstance(layer, keras.layers.LSTM | keras.layers.Bidirectional)
    )
    rnn = lstm.forward_layer if isinstance(lstm, keras.layers.Bidirectional) else lstm
    assert rnn.recurrent_dropout == 0
    assert (served is model) == (preset != "seed")  # only the seed preset uses recurrent dropout
    x = np.array([[0, 0, 3, 4, 5, 6]], dtype="int32")
    np.testing.assert_allclose(served.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_silenced_branch_no_longer_moves_the_score(trained) -> None:
    import keras

    from sentiment_inference.scoring import HEAD, NGRAM_BAG, silence

    preset, folder = trained
    model = keras.saving.load_model(folder / "model.keras", compile=False)
    if preset == "seed":  # an LSTM alone
        with pytest.raises(ValueError, match="one branch, an LSTM alone"):
            silence(model, "lstm")
        return
    rng = np.random.default_rng(0)
    head = model.get_layer(HEAD)  # both branches weighed clearly, whatever the blend learned
    head.set_weights([rng.normal(size=w.shape) for w in head.get_weights()])
    pre = Scorer.load("v", folder).preprocessor
    whole_scores = Scorer.from_model("v", model, pre).score(TEXTS)

    def scores_after_scrambling(silenced, layers) -> tuple[np.ndarray, np.ndarray]:
        before = Scorer.from_model("v", silenced, pre)
        for layer in layers:
            layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
        after = Scorer.from_model("v", silenced, before.preprocessor)
        return np.array(before.score(TEXTS)), np.array(after.score(TEXTS))

    recurrent = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional)
    ]
    for branch, scrambled in (("lstm", recurrent), ("ngrams", [model.get_layer(NGRAM_BAG)])):
        silenced = silence(model, branch)
        assert silenced.get_layer(HEAD).get_weights()[0].any()  # the other branch still counts
        layers = [silenced.get_layer(layer.name) for layer in scrambled]
        before, after = scores_after_scrambling(silenced, layers)
        np.testing.assert_allclose(before, after, atol=1e-6)
        assert not np.allclose(before, whole_scores, atol=1e-3)
    whole = keras.models.clone_model(model)
    whole.set_weights(model.get_weights())
    before, after = scores_after_scrambling(whole, [whole.get_layer(NGRAM_BAG)])
    assert not np.allclose(before, after, atol=1e-3)  # unsilenced, the scrambling shows
