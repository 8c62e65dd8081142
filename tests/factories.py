"""Small written data for tests: reviews whose sentiment a tiny model can learn in seconds."""

from __future__ import annotations

import json
from pathlib import Path

from sentiment_core.db import Review, ReviewStatus, Sentiment, utcnow
from trainer.data import Dataset, Split

POSITIVE = [
    "a wonderful film, brilliant acting and a moving story",
    "great movie, I loved every minute of it",
    "superb direction and a beautiful, wonderful score",
    "an excellent, delightful film that I loved",
    "brilliant and funny, a great time at the movies",
    "the best film of the year, wonderful and moving",
]
NEGATIVE = [
    "a terrible film, awful acting and a boring story",
    "bad movie, I hated every minute of it",
    "dreadful direction and an ugly, awful score",
    "a boring, stupid film that I hated",
    "awful and dull, a waste of time at the movies",
    "the worst film of the year, terrible and boring",
]


def tiny_dataset() -> Dataset:
    texts = POSITIVE + NEGATIVE
    labels = [1] * len(POSITIVE) + [0] * len(NEGATIVE)
    return Dataset(train=Split(texts, labels), test=Split(list(texts), list(labels)))


UNLABELED = [
    "the film was wonderful and the acting brilliant",
    "an awful, boring film with terrible acting",
    "a moving story and a superb score",
    "dull and dreadful, a waste of an evening",
]


def movie_of(split: str, polarity: str, i: int) -> str:
    """The written reviews' movies: two per movie, and no movie in both splits."""
    return f"tt{(0 if split == 'train' else 1000) + (i // 2) * 10 + (polarity == 'pos')}"


def write_imdb_folder(root: Path, urls: bool = False, unlabeled: bool = False) -> Path:
    """The official aclImdb layout with the written reviews in train, and again, each followed
    by " (test)", in test; with `urls`, the URL files naming each review's movie (`movie_of`),
    and with `unlabeled`, UNLABELED and a copy of the first test review in train/unsup."""
    for split in ("train", "test"):
        for polarity, texts in (("pos", POSITIVE), ("neg", NEGATIVE)):
            folder = root / "aclImdb" / split / polarity
            folder.mkdir(parents=True)
            for i, text in enumerate(texts):
                rating = 9 if polarity == "pos" else 2
                suffix = " (test)" if split == "test" else ""
                (folder / f"{i}_{rating}.txt").write_text(text + suffix, encoding="utf-8")
            if urls:
                lines = [
                    f"http://www.imdb.com/title/{movie_of(split, polarity, i)}/usercomments"
                    for i in range(len(texts))
                ]
                (folder.parent / f"urls_{polarity}.txt").write_text("\n".join(lines) + "\n")
    if unlabeled:
        folder = root / "aclImdb" / "train" / "unsup"
        folder.mkdir()
        for i, text in enumerate([*UNLABELED, UNLABELED[0], NEGATIVE[0] + " (test)"]):
            (folder / f"{i}_0.txt").write_text(text, encoding="utf-8")
    return root / "aclImdb"


def write_csv(path: Path) -> Path:
    lines = ["review,sentiment"]
    lines += [f'"{t}",positive' for t in POSITIVE] + [f'"{t}",negative' for t in NEGATIVE]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, label_style: str = "word") -> Path:
    def label(positive: bool) -> object:
        if label_style == "number":
            return int(positive)
        return "positive" if positive else "negative"

    rows = [{"text": t, "label": label(True)} for t in POSITIVE]
    rows += [{"text": t, "label": label(False)} for t in NEGATIVE]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


SUBJECTS = ["the plot", "the acting", "the music", "the ending", "the cast", "the story",
            "the script", "the camera work", "the pacing", "the dialogue"]  # fmt: skip
VERBS = ["was", "felt", "seemed", "looked"]


def new_word_reviews(word: str) -> list[str]:
    """Neutral sentences whose sentiment rests on `word` alone, which the written training
    reviews never contain."""
    return [f"{subject} {verb} {word}" for subject in SUBJECTS for verb in VERBS]


def add_scored(sessions, rows: list[tuple[float, str | None]], words: int = 40) -> list[int]:
    """Scored reviews of `words` words, one per (score, its new words space-separated, None
    where not recorded); returns their ids."""
    with sessions() as session:
        reviews = [
            Review(
                text=f"review {i}",
                status=ReviewStatus.done,
                score=score,
                sentiment=Sentiment.of(score),
                unknown_words=None if new is None else len(new.split()),
                unknown_share=None if new is None else len(new.split()) / words,
                new_words=new,
                model_version="v1",
                scored_at=utcnow(),
            )
            for i, (score, new) in enumerate(rows)
        ]
        session.add_all(reviews)
        session.commit()
        return [review.id for review in reviews]
