"""The label queue's ranking, and the rules it shares with the trainer."""

import pytest
from sqlalchemy import update

from sentiment_core import labeling
from sentiment_core.db import Feedback, Review, Sentiment
from sentiment_core.labeling import label_queue
from tests.factories import add_scored


def queue(sessions, holdout: float = 0.0, limit: int = 20) -> list[int]:
    return [review.id for review in label_queue(sessions=sessions, limit=limit, holdout=holdout)]


def test_each_further_label_of_a_word_counts_less(sessions) -> None:
    """x is in five reviews, y in two: x's first two labels teach more than y's first, its
    third less (5/3 < 2/1)."""
    x1, x2, x3, x4, x5, y1, y2 = add_scored(sessions, [(0.9, w) for w in ["x"] * 5 + ["y"] * 2])
    assert queue(sessions, limit=4) == [x5, x4, y2, x3]


def test_a_pick_the_gate_holds_out_teaches_no_word(sessions) -> None:
    """With every label held out, no pick brings a word closer to being learned."""
    x1, x2, x3, x4, x5, y1, y2 = add_scored(sessions, [(0.9, w) for w in ["x"] * 5 + ["y"] * 2])
    assert queue(sessions, holdout=1.0) == [x5, x4, x3, x2, x1, y2, y1]


def test_labels_already_given_count_towards_a_word(sessions) -> None:
    x1, x2, x3, x4, x5, y1, y2 = add_scored(sessions, [(0.9, w) for w in ["x"] * 5 + ["y"] * 2])
    with sessions() as session:
        for review_id in (x1, x2):
            session.add(Feedback(review_id=review_id, label=Sentiment.positive, client="c"))
        session.commit()
    assert queue(sessions, limit=3) == [y2, x5, x4]


def test_only_recent_reviews_are_ranked_and_counted(sessions, monkeypatch) -> None:
    old, z1, w1, w2 = add_scored(sessions, [(0.9, w) for w in ["z", "z", "w", "w"]])
    assert queue(sessions) == [w2, z1, w1, old]  # ties: the newest first
    monkeypatch.setattr(labeling, "QUEUE_WINDOW", 3)
    assert queue(sessions) == [w2, w1, z1]  # z is now in one recent review, w in two


@pytest.mark.parametrize("limit", [1, 2])
def test_the_queue_stops_at_its_limit(sessions, limit) -> None:
    ids = add_scored(sessions, [(0.9, w) for w in ["x", "x", ""]])
    assert queue(sessions, limit=limit) == ids[:2][::-1][:limit]


def test_words_the_active_model_has_learned_since_are_no_longer_new(sessions, tiny_model) -> None:
    """An older model recorded "wonderful" as new; the active one knows it."""
    w1, w2, w3, zorgly = add_scored(sessions, [(0.9, w) for w in ["wonderful"] * 3 + ["zorgly"]])
    assert queue(sessions) == [zorgly, w3, w2, w1]


def test_a_review_the_model_read_none_of_is_left_out(sessions) -> None:
    """Written in letters the tokenizer does not read: unsure as a review can be, but its label
    would teach nothing. All new words still count."""
    read, unread, new = add_scored(sessions, [(0.7, ""), (0.5, ""), (0.9, "x")])
    with sessions() as session:
        session.execute(update(Review).where(Review.id == unread).values(unknown_share=1.0))
        session.execute(update(Review).where(Review.id == new).values(unknown_share=1.0))
        session.commit()
    assert queue(sessions) == [new, read]
