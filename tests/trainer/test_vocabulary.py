"""Growing a trained model's vocabulary, and fine-tuning it to learn the new words."""

from pathlib import Path

import keras
import numpy as np
import pytest

from sentiment_core.registry import MODEL_FILE, PREPROCESSOR_FILE
from sentiment_core.text import Preprocessor
from sentiment_inference.scoring import HEAD, NGRAM_BAG, WORDS, Scorer
from tests.factories import NEGATIVE, POSITIVE, new_word_reviews, tiny_dataset
from trainer.data import Split
from trainer.pretrain import Pretrained
from trainer.retrain import FINE_TUNE_EPOCHS, fine_tune_rate
from trainer.train import TrainRequest, train_into
from trainer.vocabulary import grow_vocabulary


def load(artifact: Path):
    import sentiment_inference.layers  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(artifact / MODEL_FILE, compile=False)
    return model, Preprocessor.load(artifact / PREPROCESSOR_FILE)


# 3 words fit in the rows the tiny model's embedding has past its vocabulary; 2,000 make both
# tables grow, which moves every bigram bucket of the n-gram branch.
@pytest.mark.parametrize("count", [3, 2000])
def test_a_grown_model_scores_what_it_knew_as_before(tiny_artifact, count) -> None:
    model, preprocessor = load(tiny_artifact)
    words = tuple(f"zorgly{i}" for i in range(count))
    grown, vocabulary = grow_vocabulary(model, preprocessor, words, None, seed=1)

    texts = POSITIVE + NEGATIVE
    before = Scorer.from_model("before", model, preprocessor).score(texts)
    after = Scorer.from_model("after", grown, vocabulary).score(texts)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert vocabulary.vocab[: len(preprocessor.vocab)] == preprocessor.vocab
    new_ids = [vocabulary.index_of(w) for w in words]
    assert new_ids == list(range(preprocessor.num_words, vocabulary.num_words))
    assert grown.get_layer(WORDS).input_dim >= vocabulary.num_words
    bag = grown.get_layer(NGRAM_BAG).get_weights()[0]
    assert not bag[new_ids].any()  # a new word's n-gram weight starts at 0
    words_table = grown.get_layer(WORDS).get_weights()[0]
    assert np.abs(words_table[new_ids]).max() <= 0.05  # and its vector small, at random


def test_a_new_word_starts_from_its_pretrained_vector(tiny_artifact) -> None:
    model, preprocessor = load(tiny_artifact)
    width = model.get_layer(WORDS).output_dim
    vector = np.linspace(-1, 1, width, dtype=np.float32)
    pretrained = Pretrained("p1", ("zorgly",), vector[None])  # word vectors, scaled as Keras'
    grown, vocabulary = grow_vocabulary(model, preprocessor, ("zorgly",), pretrained, seed=1)
    row = grown.get_layer(WORDS).get_weights()[0][vocabulary.index_of("zorgly")]
    np.testing.assert_allclose(row, vector * 0.05 / np.abs(vector).mean(), rtol=1e-6)


def fine_tune(
    base: Path, folder: Path, feedback: Split, new_words=(), unlabeled=()
) -> tuple[dict, Scorer]:
    request = TrainRequest(
        preset="tiny",
        base=base,
        epochs=FINE_TUNE_EPOCHS,
        learning_rate=fine_tune_rate("tiny"),
        new_words=new_words,
        feedback=feedback,
        unlabeled=unlabeled,
    )
    (folder / "report").mkdir(parents=True)
    metrics, _, scorer = train_into(folder, tiny_dataset(), request)
    return metrics, scorer


def assert_unchanged(base, tuned, but: tuple[str, ...]) -> None:
    """Every layer of `base` but those named has the same weights in `tuned`."""
    for layer in base.layers:
        if layer.name not in but:
            weights = tuned.get_layer(layer.name).get_weights()
            for old, new in zip(layer.get_weights(), weights, strict=True):
                np.testing.assert_array_equal(new, old)


def test_fine_tuning_with_a_grown_vocabulary_learns_the_new_words(tiny_artifact, tmp_path):
    feedback = Split(new_word_reviews("zorgly") + new_word_reviews("blorft"), [1] * 40 + [0] * 40)
    metrics, scorer = fine_tune(tiny_artifact, tmp_path, feedback, ("blorft", "zorgly"))

    unseen = ["the soundtrack was zorgly", "the costumes felt zorgly", "the editing was blorft"]
    assert [s >= 0.5 for s in scorer.score(unseen)] == [True, True, False]
    assert scorer.preprocessor.knows("zorgly") and scorer.preprocessor.knows("blorft")
    assert Scorer.load("saved", tmp_path).score(unseen) == pytest.approx(scorer.score(unseen))
    assert metrics["epochs_run"] == FINE_TUNE_EPOCHS


def test_beside_an_n_gram_branch_fine_tuning_moves_only_the_new_words_vectors(
    tiny_artifact, tmp_path
) -> None:
    feedback = Split(new_word_reviews("zorgly"), [1] * 40)
    fine_tune(tiny_artifact, tmp_path, feedback, ("zorgly",))
    (base, base_words), (tuned, tuned_words) = load(tiny_artifact), load(tmp_path)
    known = base_words.num_words
    before, after = (m.get_layer(WORDS).get_weights()[0] for m in (base, tuned))
    np.testing.assert_array_equal(after[:known], before[:known])
    grown, _ = grow_vocabulary(base, base_words, ("zorgly",), None, seed=1337)
    start = grown.get_layer(WORDS).get_weights()[0][tuned_words.index_of("zorgly")]
    assert np.abs(after[tuned_words.index_of("zorgly")] - start).max() > 0.01  # it learned
    assert_unchanged(base, tuned, but=(WORDS, NGRAM_BAG, HEAD))  # the regression, the blend
    assert all(layer.trainable for layer in tuned.layers)  # saved as a model to train again


def test_a_new_word_no_label_holds_learns_from_the_self_trained_reviews_that_hold_it(
    tiny_artifact, tmp_path
) -> None:
    feedback = Split(new_word_reviews("zorgly"), [1] * 40)
    unlabeled = [f"{text} blorft" for text in NEGATIVE] + ["the plot was blorft"]
    words = ("blorft", "zorgly")
    vectors = []
    for name, traffic in (("without", ()), ("with", tuple(unlabeled))):
        metrics, scorer = fine_tune(tiny_artifact, tmp_path / name, feedback, words, traffic)
        row = load(tmp_path / name)[0].get_layer(WORDS).get_weights()[0]
        vectors.append(row[scorer.preprocessor.index_of("blorft")])
    assert metrics["self_trained_reviews"] > 0
    assert np.abs(vectors[1] - vectors[0]).max() > 0.01  # only the self-trained reviews hold it


def test_fine_tuning_without_a_new_word_refits_only_the_regression(tiny_artifact, tmp_path):
    feedback = Split(POSITIVE[:3] + NEGATIVE[:3], [0, 0, 0, 1, 1, 1])  # labeled the wrong way
    metrics, _ = fine_tune(tiny_artifact, tmp_path, feedback)
    assert metrics["epochs_run"] == 0 and not (tmp_path / "report" / "curves.png").exists()
    base, tuned = load(tiny_artifact)[0], load(tmp_path)[0]
    assert_unchanged(base, tuned, but=(NGRAM_BAG, HEAD))
    bags = [m.get_layer(NGRAM_BAG).get_weights()[0] for m in (base, tuned)]
    assert not np.array_equal(*bags)  # the feedback moved the regression


def test_fine_tuning_skips_feedback_without_a_known_word(tiny_artifact, tmp_path) -> None:
    # Reviews made only of words the model lacks: a masked LSTM's average over them is NaN,
    # which would turn every weight into NaN on the first batch.
    unknown = ["qqq zzz", "10/10!!", "xyzzy"] * 4
    feedback = Split(new_word_reviews("zorgly") + unknown, [1] * 40 + [0, 1, 0] * 4)
    metrics, scorer = fine_tune(tiny_artifact, tmp_path, feedback, ("zorgly",))
    assert np.isfinite(metrics["history"]["loss"]).all()
    assert [s >= 0.5 for s in scorer.score(POSITIVE + NEGATIVE)] == [True] * 6 + [False] * 6
