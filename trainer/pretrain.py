"""Word vectors learned from unlabeled text: what the `best` and `lstm` presets start from.

Skip-gram word2vec (gensim) reads the training reviews and the dataset's 50,000 unlabeled
reviews, less every text equal to a test review. A run writes a numbered artifact (`p1`, `p2`,
...) under MODEL_DIR/pretrained with the checksum of its files; it checkpoints after every epoch
in a working folder named after its data and settings, so the same run started again after an
interruption resumes from its last finished epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentiment_core.text import tokenize

if TYPE_CHECKING:
    import numpy as np

VECTORS_FILE = "vectors.npy"  # float32 [words, dim], row i is WORDS_FILE's word i
WORDS_FILE = "words.json"
META_FILE = "pretrain.json"
STATE_FILE = "state.json"  # in a working folder: the epochs done and their checkpoint
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
    epochs: int = 5
    seed: int = 1


@dataclass(frozen=True)
class WordVectors:
    version: str
    words: tuple[str, ...]
    vectors: np.ndarray

    def matrix_for(self, vocab: Sequence[str], shape: tuple[int, int], seed: int) -> np.ndarray:
        """An embedding table of `shape` for a model whose word i + 1 is vocab[i] (row 0 is
        padding): the pretrained vector, scaled to the size Keras starts embeddings at, where
        there is one, else a small random row (as are rows past the vocabulary)."""
        import numpy as np

        if shape[1] != self.vectors.shape[1]:
            raise PretrainError(
                f"pretrained vectors are {self.vectors.shape[1]}-wide, not {shape[1]}"
            )
        rng = np.random.default_rng(seed)
        table = rng.uniform(-0.05, 0.05, shape).astype(np.float32)
        scale = 0.05 / np.abs(self.vectors).mean()
        index = {word: i for i, word in enumerate(self.words)}
        for row, word in enumerate(vocab, start=1):
            if word in index:
                table[row] = self.vectors[index[word]] * scale
        table[0] = 0.0
        return table


def artifact_checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (VECTORS_FILE, WORDS_FILE):
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


def load_vectors(folder: Path) -> WordVectors:
    import numpy as np

    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if artifact_checksum(folder) != meta["sha256"]:
        raise PretrainError(f"{folder}: files do not match their recorded checksum")
    words = tuple(json.loads((folder / WORDS_FILE).read_text(encoding="utf-8")))
    return WordVectors(folder.name, words, np.load(folder / VECTORS_FILE))


def load_latest(root: Path) -> WordVectors:
    folder = latest_artifact(root)
    if folder is None:
        raise PretrainError(
            f"no pretrained word vectors under {root}: run `sentiment pretrain` first"
        )
    return load_vectors(folder)


def pretrain(
    texts: Sequence[str],
    root: Path,
    config: PretrainConfig,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Path:
    """Learn word vectors from `texts`; returns the new artifact's folder under `root`.

    `progress` is called with the words read so far (over every epoch) and the total to read.
    """
    from gensim.models import Word2Vec

    started = time.monotonic()
    fingerprint = texts_fingerprint(texts)
    key = hashlib.sha256(f"{fingerprint}{asdict(config)}".encode()).hexdigest()[:16]
    work = root / f".partial-{key}"
    work.mkdir(parents=True, exist_ok=True)
    sentences = [tokenize(text) for text in texts]
    state = _read_state(work)
    spent = state.get("seconds", 0.0) - started  # plus the clock: seconds over every attempt
    if state:
        model = Word2Vec.load(str(work / state["checkpoint"] / "model"))
    else:
        model = Word2Vec(
            vector_size=config.dim,
            window=config.window,
            min_count=config.min_count,
            sg=1,
            negative=5,
            workers=os.cpu_count() or 1,
            seed=config.seed,
        )
        model.build_vocab(sentences)
    chunk = -(-len(sentences) // CHUNKS_PER_EPOCH)
    steps = config.epochs * CHUNKS_PER_EPOCH
    total = config.epochs * model.corpus_total_words
    done = state.get("epochs", 0) * model.corpus_total_words
    progress(done, total)
    for epoch in range(state.get("epochs", 0), config.epochs):
        for part in range(CHUNKS_PER_EPOCH):
            step = epoch * CHUNKS_PER_EPOCH + part
            batch = sentences[part * chunk : (part + 1) * chunk]
            model.train(
                batch,
                total_examples=len(batch),
                epochs=1,
                start_alpha=ALPHA - (ALPHA - MIN_ALPHA) * step / steps,
                end_alpha=ALPHA - (ALPHA - MIN_ALPHA) * (step + 1) / steps,
            )
            done += sum(map(len, batch))
            progress(done, total)
        _checkpoint(model, work, epoch + 1, spent + time.monotonic())
    meta = {
        "method": "word2vec skip-gram (gensim)",
        "config": asdict(config),
        "texts": len(texts),
        "data_fingerprint": fingerprint,
        "seconds": round(spent + time.monotonic(), 3),
    }
    return _publish(model, work, root, meta)


def _read_state(work: Path) -> dict:
    path = work / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _checkpoint(model: Any, work: Path, epochs: int, seconds: float) -> None:
    """Save the model after `epochs` epochs, then switch the state to it in one rename, so an
    interruption at any point leaves the last whole checkpoint in force."""
    folder = work / f"epoch-{epochs}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    model.save(str(folder / "model"))
    previous = _read_state(work).get("checkpoint")
    tmp = work / f"{STATE_FILE}.tmp"
    state = {"epochs": epochs, "checkpoint": folder.name, "seconds": seconds}
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(work / STATE_FILE)
    if previous and previous != folder.name:
        shutil.rmtree(work / previous, ignore_errors=True)


def _publish(model: Any, work: Path, root: Path, meta: dict) -> Path:
    import numpy as np

    staged = work / "artifact"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    np.save(staged / VECTORS_FILE, model.wv.vectors.astype(np.float32))
    words = list(model.wv.index_to_key)
    (staged / WORDS_FILE).write_text(json.dumps(words), encoding="utf-8")
    meta = meta | {"words": len(words), "sha256": artifact_checksum(staged)}
    (staged / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    latest = latest_artifact(root)
    final = root / f"p{int(latest.name[1:]) + 1 if latest else 1}"
    staged.rename(final)
    shutil.rmtree(work)
    return final
