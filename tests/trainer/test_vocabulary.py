"""Growing a trained model's vocabulary, and fine-tuning it to learn the new words."""

from pathlib import Path

import keras
import numpy as np
import pytest

from sentiment_core.registry import MODEL_FILE, PREPROCESSOR_FILE
from sentiment_core.text import Preprocessor
from sentiment_inference.scoring import NGRAM_BAG, WORDS, Scorer
from tests.factories import NEGATIVE, POSITIVE, new_word_reviews, tiny_dataset
from trainer.data import Dataset, Split
from trainer.pretrain import Pretrained
from trainer.retrain import FINE_TUNE_EPOCHS, FINE_TUNE_LEARNING_RATE
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


def test_fine_tuning_with_a_grown_vocabulary_learns_the_new_words(tiny_artifact, tmp_path):
    texts = new_word_reviews("zorgly") + new_word_reviews("blorft")
    labels = [1] * 40 + [0] * 40
    base = tiny_dataset()
    train = Split(base.train.texts + texts, base.train.labels + labels)
    request = TrainRequest(
        preset="tiny",
        base=tiny_artifact,
        epochs=FINE_TUNE_EPOCHS,
        learning_rate=FINE_TUNE_LEARNING_RATE,
        new_words=("blorft", "zorgly"),
    )
    (tmp_path / "report").mkdir()
    _, _, scorer = train_into(tmp_path, Dataset(train, base.test), request)

    unseen = ["the soundtrack was zorgly", "the costumes felt zorgly", "the editing was blorft"]
    assert [s >= 0.5 for s in scorer.score(unseen)] == [True, True, False]
    assert scorer.preprocessor.knows("zorgly") and scorer.preprocessor.knows("blorft")
    assert Scorer.load("saved", tmp_path).score(unseen) == pytest.approx(scorer.score(unseen))


def test_fine_tuning_skips_reviews_without_a_known_word(tiny_artifact, tmp_path) -> None:
    base = tiny_dataset()
    # Reviews made only of words the model lacks: a masked LSTM's average over them is NaN,
    # which would turn every weight into NaN on the first batch.
    unknown = ["zzz qqq", "10/10!!", "xyzzy"] * 4
    train = Split(base.train.texts + unknown, base.train.labels + [1, 0, 1] * 4)
    request = TrainRequest(preset="tiny", base=tiny_artifact, epochs=1, learning_rate=1e-3)
    (tmp_path / "report").mkdir()
    metrics, _, scorer = train_into(tmp_path, Dataset(train, base.test), request)
    assert metrics["train_reviews"] == len(train.texts)
    assert np.isfinite(metrics["history"]["loss"]).all()
    assert [s >= 0.5 for s in scorer.score(POSITIVE + NEGATIVE)] == [True] * 6 + [False] * 6
