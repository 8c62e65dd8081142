import json

import numpy as np
import pytest

from sentiment_core.text import tokenize
from tests.factories import NEGATIVE, POSITIVE, UNLABELED
from trainer import pretrain as pretraining
from trainer.language_model import BOUNDARY, LSTM_WEIGHTS, LanguageModel, streams, tokens_per_epoch
from trainer.pretrain import PretrainConfig, PretrainError, load_latest, load_pretrained, pretrain

TEXTS = POSITIVE + NEGATIVE + UNLABELED
WORDS = sum(len(tokenize(t)) for t in TEXTS)
VECTORS = PretrainConfig(dim=8, min_count=1, epochs=3, lm_epochs=0)
CONFIG = PretrainConfig(
    dim=8,
    min_count=1,
    epochs=2,
    lm_epochs=2,
    lm_backward_epochs=2,
    lm_units=4,
    lm_words=20,
    lm_batch=256,
    lm_window=5,
)
# The words a language model epoch predicts: whole windows of the reviews end to end, in as many
# streams as give each 4 windows at least (not 256, for so short a text).
NEXT_WORDS = tokens_per_epoch([tokenize(t) for t in TEXTS], WORDS // 20, 5)


class Interrupted(Exception):
    pass


def test_streams_run_the_reviews_end_to_end_between_boundaries() -> None:
    reviews = [[5, 6, 7], [3], [4, 2], [8, 9, 10, 11]]
    data = streams(reviews, batch=2, seed=1)
    assert data.shape == (2, 7) and data.dtype == np.int32
    flat = data.ravel().tolist()  # 14 of the 14 ids: every review once, each then a boundary
    assert flat.count(BOUNDARY) == 4
    runs = [tuple(r) for r in np.split(np.array(flat), np.flatnonzero(data.ravel() == 0) + 1)]
    assert sorted(r[:-1] for r in runs if r) == sorted(tuple(r) for r in reviews)
    assert streams(reviews, 2, seed=1).tolist() == data.tolist()
    assert streams(reviews, 2, seed=2).tolist() != data.tolist()  # a new order each epoch
    assert tokens_per_epoch(reviews, batch=2, window=3) == 2 * 6  # two windows of 3, 2 streams


def test_the_language_model_learns_to_predict_the_next_word() -> None:
    reviews = [[2, 3, 4, 5, 6, 7] * 5] * 40
    table = np.random.default_rng(1).normal(0, 0.5, (10, 8)).astype(np.float32)
    model = LanguageModel(table, units=16, seed=1, steps=150)
    losses = [model.train_epoch(reviews, 8, 10, seed, lambda words: None) for seed in range(10)]
    assert losses[-1] < 0.5 * losses[0]


def test_a_backward_language_model_keeps_the_word_vectors_it_was_given() -> None:
    reviews = [[2, 3, 4, 5, 6, 7] * 5] * 40
    table = np.random.default_rng(1).normal(0, 0.5, (10, 8)).astype(np.float32)
    model = LanguageModel(table, units=16, seed=1, steps=30, learn_embedding=False)
    losses = [model.train_epoch(reviews, 8, 10, seed, lambda words: None) for seed in range(2)]
    assert losses[-1] < losses[0]  # its LSTM learns
    assert np.array_equal(model.weights()["embedding"], table)


def test_pretraining_writes_numbered_artifacts_with_their_checksum(tmp_path) -> None:
    calls = []
    first = pretrain(TEXTS, tmp_path, CONFIG, lambda done, total: calls.append((done, total)))
    assert first == tmp_path / "p1" and sorted(p.name for p in tmp_path.iterdir()) == ["p1"]
    done, total = calls[-1]
    assert done == total == CONFIG.epochs * WORDS + 4 * NEXT_WORDS  # 2 forward, 2 backward
    pretrained = load_pretrained(first)
    # The language model's vocabulary: the most frequent words, each with its embedding row.
    assert len(pretrained.words) == CONFIG.lm_words and "film" in pretrained.words
    assert pretrained.vectors.shape == (CONFIG.lm_words, 8)
    assert pretrained.lstm is not None
    assert pretrained.backward is not None
    for cell in (pretrained.lstm, pretrained.backward):
        assert [cell[n].shape for n in LSTM_WEIGHTS] == [(8, 16), (4, 16), (16,)]
    assert not np.allclose(pretrained.lstm["kernel"], pretrained.backward["kernel"])
    meta = json.loads((first / pretraining.META_FILE).read_text())
    assert meta["texts"] == len(TEXTS) and meta["config"]["lm_epochs"] == 2
    assert len(meta["lm_losses"]) == len(meta["lm_backward_losses"]) == 2
    assert meta["seconds"] > 0
    assert pretrain(TEXTS, tmp_path, VECTORS) == tmp_path / "p2"
    vectors_only = load_latest(tmp_path)
    assert vectors_only.version == "p2" and vectors_only.lstm is vectors_only.backward is None
    assert "wonderful" in vectors_only.words  # every word seen min_count times


def test_a_tampered_artifact_is_refused(tmp_path) -> None:
    folder = pretrain(TEXTS, tmp_path, CONFIG)
    np.savez(folder / pretraining.LSTM_FILE, kernel=np.zeros(3))
    with pytest.raises(PretrainError, match="checksum"):
        load_latest(tmp_path)
    with pytest.raises(PretrainError, match="run `sentiment pretrain` first"):
        load_latest(tmp_path / "none")


@pytest.mark.parametrize(
    ("stop_at", "epochs_done"),
    [(1.5, (1, None, None)), (2 + 1.5, (2, 1, None)), (2 + 3.5, (2, 2, 1))],
    ids=["vectors", "forward", "backward"],
)
def test_an_interrupted_run_resumes_after_its_last_finished_epoch(
    tmp_path, stop_at, epochs_done
) -> None:
    # `stop_at` in passes: word vectors' first, then the language models' (2 forward, 2 backward)
    stop_at = min(stop_at, 2) * WORDS + max(stop_at - 2, 0) * NEXT_WORDS

    def interrupt(done: int, total: int) -> None:
        if done > stop_at:
            raise Interrupted

    with pytest.raises(Interrupted):
        pretrain(TEXTS, tmp_path, CONFIG, interrupt)
    (work,) = tmp_path.glob(".partial-*")
    state = json.loads((work / pretraining.STATE_FILE).read_text())
    stages = ("vectors_epochs", "lm_epochs", "lm_backward_epochs")
    assert tuple(state.get(stage) for stage in stages) == epochs_done
    vectors, forward, backward = (done or 0 for done in epochs_done)
    resumed = []
    folder = pretrain(TEXTS, tmp_path, CONFIG, lambda done, total: resumed.append(done))
    # Only the epoch the interruption cut short is read again.
    assert resumed[0] == vectors * WORDS + (forward + backward) * NEXT_WORDS
    assert resumed[-1] == 2 * WORDS + 4 * NEXT_WORDS
    assert folder.name == "p1" and not list(tmp_path.glob(".partial-*"))
    assert json.loads((folder / pretraining.META_FILE).read_text())["seconds"] > 0


@pytest.mark.parametrize(
    "damaged", [pretraining.STATE_FILE, "vectors-1/model", "lm-2.npz", "lm_backward-1.npz"]
)
def test_a_damaged_checkpoint_stops_the_run_with_one_line(tmp_path, damaged) -> None:
    def interrupt(done: int, total: int) -> None:
        if done > WORDS + 3.5 * NEXT_WORDS:  # in the second epoch of the backward model
            raise Interrupted

    config = PretrainConfig(**{**CONFIG.__dict__, "epochs": 1})
    with pytest.raises(Interrupted):
        pretrain(TEXTS, tmp_path, config, interrupt)
    (work,) = tmp_path.glob(".partial-*")
    path = work / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(PretrainError, match="checkpoint cannot be read.*delete the folder"):
        pretrain(TEXTS, tmp_path, config)


def test_other_texts_or_settings_start_a_run_of_their_own(tmp_path) -> None:
    def stop_after_a_chunk(done: int, total: int) -> None:
        if done:
            raise Interrupted

    with pytest.raises(Interrupted):
        pretrain(TEXTS, tmp_path, CONFIG, stop_after_a_chunk)
    fresh = []
    pretrain(TEXTS[1:], tmp_path, CONFIG, lambda done, total: fresh.append(done))
    assert fresh[0] == 0
    assert len(list(tmp_path.glob(".partial-*"))) == 1  # the interrupted one waits to resume


def test_the_embedding_table_takes_the_vectors_of_the_words_it_knows(tmp_path) -> None:
    vocab = ("wonderful", "zorgly", "film")
    for config, scaled in ((VECTORS, True), (CONFIG, False)):
        pretrained = load_pretrained(pretrain(TEXTS, tmp_path, config))
        table = pretrained.matrix_for(vocab, (5, 8), seed=1)
        assert table.shape == (5, 8) and not table[0].any()
        ratio = table[3] / pretrained.vectors[pretrained.words.index("film")]
        assert np.allclose(ratio, ratio[0]) and ratio[0] > 0  # the same direction
        # word2vec's vectors are rescaled; a language model's are the ones its LSTM read
        assert np.isclose(ratio[0], 1.0) is not scaled
        assert np.abs(table[2]).max() <= 0.05  # an unknown word starts small and random
        with pytest.raises(PretrainError, match="8-wide, not 16"):
            pretrained.matrix_for(vocab, (5, 16), seed=1)
