"""Which labels teach the model most, and which of them it learns from: the label queue, and
the feedback a retraining run holds out to judge its candidate on (sentiment_core/gate.py).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.db import Review, ReviewStatus
from sentiment_core.registry import PREPROCESSOR_FILE, active_version
from sentiment_core.text import Preprocessor

log = logging.getLogger(__name__)

QUEUE_WINDOW = 5_000  # the most recent scored reviews the queue ranks and counts new words over


def held_out(review_id: int, share: float) -> bool:
    """Whether a labeled review belongs to the gate's held-out feedback; stable across runs."""
    digest = hashlib.sha256(f"review-{review_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def recent_traffic(*columns: Any) -> Select:
    """`columns` of the `QUEUE_WINDOW` most recent scored reviews, newest first; a further
    `where` filters before the limit. The label queue ranks these, labeled or not; a retraining
    run self-trains on the most recent that nobody labeled."""
    return (
        select(*columns)
        .where(Review.status == ReviewStatus.done)
        .order_by(Review.id.desc())
        .limit(QUEUE_WINDOW)
    )


@lru_cache(maxsize=2)
def vocabulary(artifact_path: str) -> Preprocessor:
    return Preprocessor.load(Path(artifact_path) / PREPROCESSOR_FILE)


def known_to_active_model(session: Session) -> Callable[[str], bool]:
    """Whether the active model knows a word: a review's new words were recorded against the
    model that scored it, and a run since may have grown the vocabulary by some of them. Where
    the active model's vocabulary cannot be read, every recorded word counts as new."""
    active = active_version(session)
    if active is not None:
        try:
            return vocabulary(active.artifact_path).knows
        except (OSError, ValueError):
            log.warning("cannot read %s's vocabulary", active.version, exc_info=True)
    return lambda _word: False


def label_queue(
    *, sessions: sessionmaker[Session], limit: int, holdout: float, offset: int = 0
) -> list[Review]:
    """Scored reviews that nobody has labeled, those whose label would teach the model most
    first, among the `QUEUE_WINDOW` most recent: `limit` of them, after the first `offset`.

    A review's priority adds up: a score near 0.5 (the model is unsure: 0 to 1), a candidate in
    shadow that disagrees with the served score (1), and each of its new words (outside the
    active model's vocabulary): the share of the recent reviews that hold it, in percent, over
    one more than the labels a run would learn it from. A word that recurs teaches the model to
    read all the reviews that hold it, and each further label of it teaches less; a typo or a
    name teaches nothing. Reviews are taken greedily: each one taken counts as a label for its
    words, unless the gate will hold it out (`holdout`), so the queue spreads over the new words
    instead of labeling the most common one again and again (BENCHMARKS.md, issue 12).
    """
    uncertainty = 1 - 2 * func.abs(Review.score - 0.5)
    disagree = case(((Review.shadow_score >= 0.5) != (Review.score >= 0.5), 1.0), else_=0.0)
    # A review the model read none of (letters it cannot read) teaches it nothing: left out.
    unreadable = (Review.unknown_share >= 1) & (func.coalesce(Review.new_words, "") == "")
    recent = recent_traffic(
        Review.id, uncertainty + disagree, Review.new_words, Review.feedback.any(), unreadable
    )
    with sessions() as session:
        rows = session.execute(recent).all()
        known = known_to_active_model(session)
        words = {
            review_id: [word for word in (new or "").split() if not known(word)]
            for review_id, _, new, _, _ in rows
        }
        holding = Counter(word for these in words.values() for word in these)
        labels = Counter(
            word
            for review_id, _, _, is_labeled, _ in rows
            if is_labeled and not held_out(review_id, holdout)
            for word in words[review_id]
        )
        percent = 100 / max(1, len(rows))

        def priority(review_id: int, base: float) -> float:
            return base + percent * sum(holding[w] / (1 + labels[w]) for w in words[review_id])

        heap = [
            (-priority(review_id, base), -review_id, base)
            for review_id, base, _, is_labeled, unreadable in rows
            if not (is_labeled or unreadable)
        ]
        heapq.heapify(heap)
        chosen: list[int] = []
        while heap and len(chosen) < offset + limit:
            _, negative_id, base = heapq.heappop(heap)
            now = priority(-negative_id, base)
            if heap and (-now, negative_id) > heap[0][:2]:  # others come first now
                heapq.heappush(heap, (-now, negative_id, base))
                continue
            chosen.append(-negative_id)
            if not held_out(-negative_id, holdout):
                labels.update(words[-negative_id])
        chosen = chosen[offset:]
        reviews = {r.id: r for r in session.scalars(select(Review).where(Review.id.in_(chosen)))}
        return [reviews[review_id] for review_id in chosen]
