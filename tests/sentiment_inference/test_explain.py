"""Explanations: words as written, with weights whose sign and size are known where the model's
are, on both methods (integrated gradients on the compiled path, occlusion elsewhere)."""

import dataclasses

import numpy as np
import pytest

from sentiment_core.text import Preprocessor
from sentiment_inference.explain import explain, logit
from sentiment_inference.scoring import HEAD, NGRAM_BAG, Scorer
from trainer.model import PRESETS, build_model


@pytest.fixture(scope="module")
def known() -> Scorer:
    """A model that knows two words, by construction: its n-gram bag weighs "good" +3 and "bad"
    -3, and every other n-gram and the LSTM's features 0."""
    preset = PRESETS["tiny"]
    model = build_model(preset)
    bag = np.zeros_like(model.get_layer(NGRAM_BAG).get_weights()[0])
    bag[1], bag[2] = 3.0, -3.0
    model.get_layer(NGRAM_BAG).set_weights([bag])
    kernel = np.zeros_like(model.get_layer(HEAD).get_weights()[0])
    kernel[-1] = 1.0
    model.get_layer(HEAD).set_weights([kernel, np.zeros(1)])
    preprocessor = Preprocessor(vocab=("good", "bad", "film"), max_len=preset.max_len)
    return Scorer.from_model("known", model, preprocessor)


# The model reads "good film bad film": its set of 6 n-grams (3 unigrams, 3 bigrams), summed
# and divided by the root of 6. The exact term of "good" is 3/sqrt(6); leaving it out leaves
# "film bad film", whose 4 n-grams give -3/sqrt(4).
@pytest.mark.parametrize(
    ("method", "size"), [("integrated-gradients", 3 / np.sqrt(6)), ("occlusion", 1.5)]
)
def test_a_word_that_pushes_toward_positive_has_a_positive_weight(known, method, size) -> None:
    scorer = (
        known if method == "integrated-gradients" else dataclasses.replace(known, attribute=None)
    )
    text = "Good film.<br />A BAD film, zzz!"
    result = explain(scorer, text)
    assert result.method == method
    weights = {t["text"]: t["weight"] for t in result.tokens}
    assert weights == pytest.approx({"Good": size, "film": 0, "A": 0, "BAD": -size, "zzz": 0})
    assert [text[t["start"] : t["end"]] for t in result.tokens] == [
        t["text"] for t in result.tokens
    ]
    assert result.score == pytest.approx(0.5)
    assert [r["end"] for r in result.running_scores] == [9, 31]  # after "film." and "zzz!"
    assert result.running_scores[0]["score"] == pytest.approx(1 / (1 + np.exp(-np.sqrt(3))))


def test_a_word_with_letters_outside_ascii_is_given_as_written(known) -> None:
    text = "Café crème, naïve—DON'T: good"
    result = explain(known, text)
    assert [t["text"] for t in result.tokens] == ["Café", "crème", "naïve", "DON'T", "good"]
    assert [text[t["start"] : t["end"]] for t in result.tokens] == [
        t["text"] for t in result.tokens
    ]
    assert result.tokens[-1]["weight"] > 0 and result.tokens[0]["weight"] == 0


def test_a_running_score_reads_its_sentence_as_the_model_reads_a_review(known) -> None:
    """Its last `max_len` words: a sentence before the whole review's window still counts."""
    text = "Good film. " + "Film café. " * known.preprocessor.max_len
    result = explain(known, text)
    first, second = result.running_scores[:2]
    assert first == {"end": 9, "score": pytest.approx(1 / (1 + np.exp(-np.sqrt(3))))}
    assert second["end"] == 20  # after "café", not after its ASCII piece "caf"
    assert result.running_scores[-1]["score"] == pytest.approx(result.score)


def test_the_trained_models_words_push_their_way(trained) -> None:
    preset, folder = trained
    scorer = Scorer.load("v", folder)
    result = explain(scorer, "a wonderful, brilliant film but an awful, boring story")
    assert result.method == ("occlusion" if preset == "seed" else "integrated-gradients")
    weight = {t["text"]: t["weight"] for t in result.tokens}
    assert result.score == pytest.approx(scorer.score([result_text(result)])[0], abs=1e-5)
    assert result.running_scores[-1]["score"] == pytest.approx(result.score, abs=1e-5)
    if preset != "seed":  # two epochs teach the seed notebook's model next to nothing
        assert weight["wonderful"] > 0 and weight["brilliant"] > 0
        assert weight["awful"] < 0 and weight["boring"] < 0


def test_occlusion_weights_are_what_leaving_each_word_out_changes(trained) -> None:
    _, folder = trained
    scorer = dataclasses.replace(Scorer.load("v", folder), attribute=None)
    text = "a wonderful film, but boring"
    result = explain(scorer, text)
    for token in result.tokens:
        without = text[: token["start"]] + text[token["end"] :]
        expected = logit(result.score) - logit(scorer.score([without])[0])
        assert token["weight"] == pytest.approx(expected, abs=1e-4)


def test_a_review_without_a_known_word_is_explained_with_zeros(trained) -> None:
    result = explain(Scorer.load("v", trained[1]), "Zzz qqq!")
    assert [(t["text"], t["weight"]) for t in result.tokens] == [("Zzz", 0.0), ("qqq", 0.0)]


def result_text(result) -> str:
    return " ".join(t["text"] for t in result.tokens)
