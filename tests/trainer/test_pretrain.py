import json

import numpy as np
import pytest

from sentiment_core.text import tokenize
from tests.factories import NEGATIVE, POSITIVE, UNLABELED
from trainer import pretrain as pretraining
from trainer.pretrain import PretrainConfig, PretrainError, load_latest, load_vectors, pretrain

TEXTS = POSITIVE + NEGATIVE + UNLABELED
WORDS = sum(len(tokenize(t)) for t in TEXTS)
CONFIG = PretrainConfig(dim=8, min_count=1, epochs=3)


class Interrupted(Exception):
    pass


def test_pretraining_writes_numbered_artifacts_with_their_checksum(tmp_path) -> None:
    calls = []
    first = pretrain(TEXTS, tmp_path, CONFIG, lambda done, total: calls.append((done, total)))
    assert first == tmp_path / "p1" and sorted(p.name for p in tmp_path.iterdir()) == ["p1"]
    assert calls[0] == (0, CONFIG.epochs * WORDS) and calls[-1] == (CONFIG.epochs * WORDS,) * 2
    vectors = load_vectors(first)
    assert "wonderful" in vectors.words and vectors.vectors.shape == (len(vectors.words), 8)
    meta = json.loads((first / pretraining.META_FILE).read_text())
    assert meta["texts"] == len(TEXTS) and meta["config"]["epochs"] == 3 and meta["seconds"] > 0
    assert pretrain(TEXTS, tmp_path, CONFIG) == tmp_path / "p2"
    assert load_latest(tmp_path).version == "p2"


def test_a_tampered_artifact_is_refused(tmp_path) -> None:
    folder = pretrain(TEXTS, tmp_path, CONFIG)
    np.save(folder / pretraining.VECTORS_FILE, np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(PretrainError, match="checksum"):
        load_latest(tmp_path)
    with pytest.raises(PretrainError, match="run `sentiment pretrain` first"):
        load_latest(tmp_path / "none")


def test_an_interrupted_run_resumes_after_its_last_finished_epoch(tmp_path) -> None:
    def stop_in_the_second_epoch(done: int, total: int) -> None:
        if done > 1.5 * WORDS:
            raise Interrupted

    with pytest.raises(Interrupted):
        pretrain(TEXTS, tmp_path, CONFIG, stop_in_the_second_epoch)
    (work,) = tmp_path.glob(".partial-*")
    assert json.loads((work / pretraining.STATE_FILE).read_text())["epochs"] == 1
    resumed = []
    folder = pretrain(TEXTS, tmp_path, CONFIG, lambda done, total: resumed.append(done))
    assert resumed[0] == WORDS  # the first epoch is not read again
    assert resumed[-1] == CONFIG.epochs * WORDS
    assert folder.name == "p1" and not list(tmp_path.glob(".partial-*"))


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
    vectors = load_vectors(pretrain(TEXTS, tmp_path, CONFIG))
    vocab = ("wonderful", "zorgly", "awful")
    table = vectors.matrix_for(vocab, (5, 8), seed=1)
    assert table.shape == (5, 8) and not table[0].any()
    ratio = table[1] / vectors.vectors[vectors.words.index("wonderful")]
    assert np.allclose(ratio, ratio[0]) and ratio[0] > 0  # the same direction, rescaled
    assert np.abs(table[2]).max() <= 0.05  # an unknown word starts small and random
    with pytest.raises(PretrainError, match="8-wide, not 16"):
        vectors.matrix_for(vocab, (5, 16), seed=1)
