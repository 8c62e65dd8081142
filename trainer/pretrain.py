"""Pretraining on unlabeled text: what the `best` and `lstm` presets start from.

It reads the training reviews and the dataset's 50,000 unlabeled reviews, less every text equal
to a test review, in three stages: skip-gram word vectors (gensim's word2vec), then a recurrent
language model (`trainer/language_model.py`) whose embedding starts from those vectors, then a
second one that reads the reviews end to start on the first one's embedding. A run writes a
numbered artifact (`p1`, `p2`, ...) under MODEL_DIR/pretrained: the language models' words,
their embedding and the two LSTMs, with the checksum of the files. It checkpoints after every
epoch of each stage in a working folder named after its data and settings, so the same run
started again after an interruption resumes from its last finished epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zipfile import BadZipFile

from sentiment_core.text import tokenize
from trainer.language_model import LSTM_WEIGHTS, UNKNOWN, tokens_per_epoch

if TYPE_CHECKING:
    import numpy as np

VECTORS_FILE = "vectors.npy"  # float32 [words, dim], row i is WORDS_FILE's word i
WORDS_FILE = "words.json"
LSTM_FILE = "lstm.npz"  # the language model's LSTM cell, where it has one
BACKWARD_FILE = "lstm_backward.npz"  # the backward language model's, where it has one
META_FILE = "pretrain.json"
STATE_FILE = "state.json"  # in a working folder: the stage, its epochs done, their checkpoint
CHUNKS_PER_EPOCH = 20  # progress is reported this often per pass over the text
ALPHA, MIN_ALPHA = 0.025, 0.0001  # word2vec's learning rate, falling linearly over the run
_VERSION = re.compile(r"p([0-9]+)")


class PretrainError(RuntimeError):
    """No usable pretrained artifact, or one whose files do not match its checksum."""


@dataclass(frozen=True)
class PretrainConfig:
    dim: int = 128  # the embedding width of the presets that start from these vectors
    window: int = 5
    min_count: int = 3  # rarer words get no vector (and start from random in the model)
    epochs: int = 5  # of the word vectors
    lm_epochs: int = 3  # passes of the language model over the texts; 0: word vectors alone
    lm_backward_epochs: int = 3  # passes of the backward one, after the forward one's; 0: none
    lm_words: int = 30_000  # the language model's vocabulary: the most frequent words
    lm_units: int = 256  # its LSTM's, and so the classifier's
    lm_batch: int = 256  # parallel streams of text (fewer for a small text: 4 windows each)
    lm_window: int = 80  # words read between two updates
    seed: int = 1


@dataclass(frozen=True)
class Pretrained:
    """A pretraining artifact: words, their vectors and, from a language model, its LSTM."""

    version: str
    words: tuple[str, ...]
    vectors: np.ndarray
    lstm: dict[str, np.ndarray] | None = None  # LSTM_WEIGHTS of trainer/language_model.py
    backward: dict[str, np.ndarray] | None = None  # the backward language model's, the same

    def matrix_for(self, vocab: Sequence[str], shape: tuple[int, int], seed: int) -> np.ndarray:
        """An embedding table of `shape` for a model whose word i + 1 is vocab[i] (row 0 is
        padding): the pretrained vector where there is one, else a small random row (as are
        rows past the vocabulary, which no text reaches). Word2vec's vectors alone
        are scaled to the size Keras starts embeddings at; a language model's are its own, as
        its LSTM reads them."""
        import numpy as np

        if shape[1] != self.vectors.shape[1]:
            raise PretrainError(
                f"pretrained vectors are {self.vectors.shape[1]}-wide, not {shape[1]}"
            )
        rng = np.random.default_rng(seed)
        table = rng.uniform(-0.05, 0.05, shape).astype(np.float32)
        scale = 1.0 if self.lstm else 0.05 / np.abs(self.vectors).mean()
        index = {word: i for i, word in enumerate(self.words)}
        for row, word in enumerate(vocab, start=1):
            if word in index:
                table[row] = self.vectors[index[word]] * scale
        table[0] = 0.0
        return table


def artifact_checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (VECTORS_FILE, WORDS_FILE, LSTM_FILE, BACKWARD_FILE):
        if (folder / name).is_file():
            digest.update(name.encode())
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in sorted(texts):
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def latest_artifact(root: Path) -> Path | None:
    """The newest finished artifact under `root`, or None."""
    versions = [p for p in root.glob("p*") if _VERSION.fullmatch(p.name) and p.is_dir()]
    return max(versions, key=lambda p: int(p.name[1:]), default=None)


def load_pretrained(folder: Path) -> Pretrained:
    import numpy as np

    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if artifact_checksum(folder) != meta["sha256"]:
        raise PretrainError(f"{folder}: files do not match their recorded checksum")
    words = tuple(json.loads((folder / WORDS_FILE).read_text(encoding="utf-8")))
    cells = {}
    for name in (LSTM_FILE, BACKWARD_FILE):
        if (folder / name).is_file():
            with np.load(folder / name) as saved:
                cells[name] = dict(saved)
    vectors = np.load(folder / VECTORS_FILE)
    return Pretrained(folder.name, words, vectors, cells.get(LSTM_FILE), cells.get(BACKWARD_FILE))


def load_latest(root: Path) -> Pretrained:
    folder = latest_artifact(root)
    if folder is None:
        raise PretrainError(f"nothing pretrained under {root}: run `sentiment pretrain` first")
    return load_pretrained(folder)


def pretrain(
    texts: Sequence[str],
    root: Path,
    config: PretrainConfig,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Path:
    """Pretrain on `texts`; returns the new artifact's folder under `root`.

    `progress` is called with the words read so far (over every epoch of both stages) and the
    total to read.
    """
    import numpy as np
    from gensim.models import Word2Vec

    started = time.monotonic()
    fingerprint = texts_fingerprint(texts)
    key = hashlib.sha256(f"{fingerprint}{asdict(config)}".encode()).hexdigest()[:16]
    work = root / f".partial-{key}"
    work.mkdir(parents=True, exist_ok=True)
    sentences = [tokenize(text) for text in texts]
    with _checkpoint_read(work):
        state = _read_state(work)
        vectors = Word2Vec.load(str(work / state["vectors"] / "model")) if state else None
    spent = state.get("seconds", 0.0) - started  # plus the clock: seconds over every attempt
    if vectors is None:
        vectors = Word2Vec(
            vector_size=config.dim,
            window=config.window,
            min_count=config.min_count,
            sg=1,
            negative=5,
            workers=os.cpu_count() or 1,
            seed=config.seed,
        )
        vectors.build_vocab(sentences)
    words = tuple(vectors.wv.index_to_key[: config.lm_words])
    index = {word: i for i, word in enumerate(words, start=UNKNOWN + 1)}
    lm_sequences = [[index.get(word, UNKNOWN) for word in sentence] for sentence in sentences]
    words_read = sum(map(len, lm_sequences))
    lanes = max(1, min(config.lm_batch, words_read // (4 * config.lm_window)))
    next_words = tokens_per_epoch(lm_sequences, lanes, config.lm_window)
    stages = {"lm": config.lm_epochs, "lm_backward": config.lm_epochs and config.lm_backward_epochs}
    total = config.epochs * vectors.corpus_total_words + sum(stages.values()) * next_words
    vectors_done = state.get("vectors_epochs", 0)
    lm_done = sum(state.get(f"{stage}_epochs", 0) for stage in stages)
    done = [vectors_done * vectors.corpus_total_words + lm_done * next_words]
    progress(done[0], total)

    def advance(words_read: int) -> None:
        done[0] += words_read
        progress(done[0], total)

    chunk = -(-len(sentences) // CHUNKS_PER_EPOCH)
    steps = config.epochs * CHUNKS_PER_EPOCH
    for epoch in range(vectors_done, config.epochs):
        for part in range(CHUNKS_PER_EPOCH):
            step = epoch * CHUNKS_PER_EPOCH + part
            batch = sentences[part * chunk : (part + 1) * chunk]
            vectors.train(
                batch,
                total_examples=len(batch),
                epochs=1,
                start_alpha=ALPHA - (ALPHA - MIN_ALPHA) * step / steps,
                end_alpha=ALPHA - (ALPHA - MIN_ALPHA) * (step + 1) / steps,
            )
            advance(sum(map(len, batch)))
        state = _checkpoint(work, state, spent, "vectors", epoch + 1, vectors)
    cells: dict[str, dict[str, np.ndarray]] = {}
    if config.lm_epochs:
        from trainer.language_model import LanguageModel

        first = Pretrained("", tuple(vectors.wv.index_to_key), vectors.wv.vectors)
        table = first.matrix_for(("<unknown>", *words), (len(words) + 2, config.dim), config.seed)
        reversed_sequences = [sequence[::-1] for sequence in lm_sequences]
        for stage, epochs in stages.items():
            if not epochs:
                continue
            steps = epochs * next_words // (lanes * config.lm_window)
            forward = stage == "lm"
            model = LanguageModel(
                table, config.lm_units, config.seed, steps, learn_embedding=forward
            )
            if state.get(stage):
                # Opened here: np.load leaves open a file it cannot read as an archive.
                with _checkpoint_read(work), (work / state[stage]).open("rb") as file:
                    model.set_weights(dict(np.load(file)))
            for epoch in range(state.get(f"{stage}_epochs", 0), epochs):
                loss = model.train_epoch(
                    lm_sequences if forward else reversed_sequences,
                    lanes,
                    config.lm_window,
                    config.seed + epoch,
                    advance,
                )
                state = _checkpoint(work, state, spent, stage, epoch + 1, model.weights(), loss)
            weights = model.weights()
            cells[stage] = {name: weights[name] for name in LSTM_WEIGHTS}
            table = weights["embedding"]  # the backward model reads the forward one's
    meta = {
        "method": "word2vec skip-gram (gensim), then LSTM language models",
        "config": asdict(config),
        "texts": len(texts),
        "data_fingerprint": fingerprint,
        "seconds": round(spent + time.monotonic(), 1),
        # sampled-softmax loss, each epoch's mean
        "lm_losses": state.get("lm_losses", []),
        "lm_backward_losses": state.get("lm_backward_losses", []),
    }
    if not cells:
        artifact = Pretrained("", tuple(vectors.wv.index_to_key), vectors.wv.vectors)
    else:
        vectors_of_words = table[UNKNOWN + 1 :]
        artifact = Pretrained("", words, vectors_of_words, cells["lm"], cells.get("lm_backward"))
    return _publish(artifact, work, root, meta)


@contextmanager
def _checkpoint_read(work: Path) -> Iterator[None]:
    """A checkpoint that cannot be read (damaged by hand or by the disk) stops the run with one
    line that says what to do."""
    try:
        yield
    except (OSError, ValueError, EOFError, KeyError, pickle.UnpicklingError, BadZipFile) as exc:
        raise PretrainError(
            f"{work}: its checkpoint cannot be read ({exc}); delete the folder to start over"
        ) from exc


def _read_state(work: Path) -> dict:
    path = work / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _checkpoint(
    work: Path, state: dict, spent: float, stage: str, epochs: int, saved: Any, loss: float = 0.0
) -> dict:
    """Save what `epochs` epochs of `stage` ("vectors", "lm" or "lm_backward") finished: the
    word2vec model, or a language model's weights and its epoch's mean `loss`. Then switch the
    state to it in one rename, so that an interruption at any point leaves the last whole
    checkpoint in force; returns the state."""
    import numpy as np

    new = dict(state, seconds=spent + time.monotonic())
    new[f"{stage}_epochs"] = epochs
    if stage == "vectors":
        new[stage] = f"vectors-{epochs}"
        folder = work / new[stage]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        saved.save(str(folder / "model"))
    else:
        new[stage] = f"{stage}-{epochs}.npz"
        np.savez(work / new[stage], **saved)
        new[f"{stage}_losses"] = [*state.get(f"{stage}_losses", []), round(loss, 4)]
    tmp = work / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(new), encoding="utf-8")
    tmp.replace(work / STATE_FILE)
    if state.get(stage) and state[stage] != new[stage]:
        old = work / state[stage]
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    return new


def _publish(artifact: Pretrained, work: Path, root: Path, meta: dict) -> Path:
    import numpy as np

    staged = work / "artifact"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    np.save(staged / VECTORS_FILE, artifact.vectors.astype(np.float32))
    (staged / WORDS_FILE).write_text(json.dumps(list(artifact.words)), encoding="utf-8")
    cells: dict[str, dict[str, Any] | None] = {
        LSTM_FILE: artifact.lstm,
        BACKWARD_FILE: artifact.backward,
    }
    for name, cell in cells.items():
        if cell:
            np.savez(staged / name, **cell)
    meta = meta | {"words": len(artifact.words), "sha256": artifact_checksum(staged)}
    (staged / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    latest = latest_artifact(root)
    final = root / f"p{int(latest.name[1:]) + 1 if latest else 1}"
    staged.rename(final)
    # First, so that a kill while the folder is removed leaves no state naming deleted files.
    (work / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(work)
    return final
