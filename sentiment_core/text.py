"""Text cleaning, tokenization and the vocabulary: one implementation for training and serving.

Each model version stores its own `Preprocessor` (vocabulary and window) beside its weights,
so serving never re-derives the vocabulary and never re-implements tokenization.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

SCHEME = "lower-words-v1"  # tokenization scheme; a model trained with another one refuses to load
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
# Words as written: what lies between spaces and ASCII punctuation but the apostrophe (a
# combining mark stays with its letter); one with a letter or digit but none in ASCII holds no
# token (Cyrillic, Devanagari, CJK, …).
_WRITTEN = re.compile(r"[^\s!-&(-/:-@\[-`{-~]+")
_ALNUM, _ASCII_ALNUM = re.compile(r"[^\W_]"), re.compile(r"[a-zA-Z0-9]")


def unreadable_words(text: str) -> int:
    """How many words of `text` the tokenizer reads nothing of."""
    if text.isascii():
        return 0
    written = _WRITTEN.findall(text)
    return sum(1 for w in written if _ALNUM.search(w) and not _ASCII_ALNUM.search(w))


PAD = 0  # index 0 is padding; words are numbered from 1 by falling frequency


def tokenize(text: str) -> list[str]:
    """Lower-cased words of `text`, with the dataset's `<br />` line breaks treated as spaces."""
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """The words of `tokenize(text)`, each with its character offsets `start, end` in `text`.

    Kept beside `tokenize` rather than under it, which stays the faster one for scoring; a test
    holds the two to the same words on any text.
    """
    cleaned = _BREAK.sub(lambda m: " " * (m.end() - m.start()), text)
    lowered = cleaned.lower()
    if len(lowered) == len(cleaned):  # lowering kept every character in its place
        return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(lowered)]
    # A few characters lower to two (U+0130 "İ" to "i" and a combining dot): map positions back.
    origin = [i for i, char in enumerate(cleaned) for _ in char.lower()]
    return [
        (m.group(), origin[m.start()], origin[m.end() - 1] + 1) for m in _TOKEN.finditer(lowered)
    ]


class Reading(NamedTuple):
    """What a model reads of a text: its words' indices in the vocabulary (the last `max_len`),
    and the words outside it: how many, their share of its words (0 for a text without words),
    both counting the words written in letters the tokenizer does not read, and the words it
    could learn, each once, space-separated."""

    ids: list[int]
    unknown: int
    share: float
    new_words: str


@dataclass(frozen=True)
class Preprocessor:
    """Maps raw review text to the integer windows a model was trained on.

    `vocab[i]` is the word with index i + 1. Words outside the vocabulary are dropped, as the
    seed notebook's Keras `Tokenizer(num_words=...)` did, and the *last* `max_len` tokens are
    kept (the notebook's `pad_sequences` default, truncating='pre').
    """

    vocab: tuple[str, ...]
    max_len: int

    @classmethod
    def fit(cls, texts: Iterable[str], *, num_words: int, max_len: int) -> Preprocessor:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        # Ties broken alphabetically so the vocabulary is deterministic.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(vocab=tuple(word for word, _ in ranked[: num_words - 1]), max_len=max_len)

    @property
    def num_words(self) -> int:
        return len(self.vocab) + 1

    def knows(self, word: str) -> bool:
        return word in self._index

    def read(self, texts: Iterable[str]) -> list[Reading]:
        """`encode`, with the words outside the vocabulary, in one pass over each text."""
        index, readings = self._index, []
        for text in texts:
            ids, outside = [], []
            for word in tokenize(text):
                i = index.get(word)
                if i is None:
                    outside.append(word)
                else:
                    ids.append(i)
            unknown = len(outside) + unreadable_words(text)
            words = len(ids) + unknown
            share = unknown / words if words else 0.0
            new_words = " ".join(dict.fromkeys(outside))
            readings.append(Reading(ids[-self.max_len :], unknown, share, new_words))
        return readings

    def index_of(self, word: str) -> int | None:
        return self._index.get(word)

    def encode(self, texts: Iterable[str]) -> list[list[int]]:
        index = self._index
        return [
            [i for i in (index.get(w) for w in tokenize(text)) if i is not None][-self.max_len :]
            for text in texts
        ]

    def pad(
        self, sequences: Sequence[Sequence[int]], length: int | None = None, right: bool = False
    ) -> np.ndarray:
        """Pad (and left-truncate) sequences into one int32 matrix of `length` columns.

        Padding goes on the left, as the seed model was trained; `right=True` puts it after the
        tokens, which a model that masks padding reads the same way and which lets the GPU's
        fused recurrent kernel run (it takes right-padded masks only).
        """
        import numpy as np

        width = length or self.max_len
        out = np.zeros((len(sequences), width), dtype=np.int32)
        for row, seq in enumerate(sequences):
            seq = seq[-width:]
            if seq:
                if right:
                    out[row, : len(seq)] = seq
                else:
                    out[row, width - len(seq) :] = seq
        return out

    @cached_property
    def _index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.vocab, start=1)}

    def save(self, path: Path) -> None:
        payload = {"scheme": SCHEME, "max_len": self.max_len, "vocab": list(self.vocab)}
        path.write_text(json.dumps(payload), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("scheme") != SCHEME:
            raise ValueError(f"{path}: tokenization scheme {payload.get('scheme')!r} is unknown")
        return cls(vocab=tuple(payload["vocab"]), max_len=int(payload["max_len"]))
