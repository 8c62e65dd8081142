"""Load shedding: the reviews waiting to be scored, measured cheaply enough to check on every
submission, and the refusal of a submission that would take them past the limit, so that the
reviews accepted are scored within the latency the limit stands for.

Counting the waiting reviews on every submission would load the database most when it is
busiest, so each process counts at most once a `refresh_s` and adds what it admitted since. A
count is one query of two indexed counts. Processes admitting at the same moment can together
overshoot the limit by what they admit between counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sentiment_core.db import Review, ReviewStatus, utcnow
from sentiment_core.errors import TooLarge, Unavailable

WAITING = (ReviewStatus.queued, ReviewStatus.scoring)  # the backlog: accepted, not yet scored
REFRESH_S = 1.0  # how stale a process's count may be: a second's submissions, at most
# Retry-After divides by the workers' rate over this many seconds back; a longer wait would be a
# guess from an older rate, so it is also the longest Retry-After.
RATE_WINDOW_S = 60


class Backlog:
    """One process's count of the reviews waiting to be scored, against `limit` (0: none)."""

    def __init__(
        self, limit: int, *, on_refused: Callable[[], object], refresh_s: float = REFRESH_S
    ) -> None:
        self.limit, self.refresh_s, self._on_refused = limit, refresh_s, on_refused
        self._lock = threading.Lock()
        self._counted_at = -math.inf
        self._reviews = 0  # waiting at the last count, plus what this process admitted since
        self._scored = 0  # reviews scored in the RATE_WINDOW_S before the last count

    def admit(self, session: Session, reviews: int) -> None:
        """Count `reviews` more as waiting, or refuse them all: TooLarge when they are more
        than may ever wait, Unavailable with the seconds to wait when they would take the
        backlog past the limit."""
        if not self.limit:
            return
        if reviews > self.limit:
            message = f"{reviews} reviews; at most {self.limit} may wait to be scored at once"
            raise TooLarge("too_many_reviews", message)
        with self._lock:
            if time.monotonic() - self._counted_at >= self.refresh_s:
                self._count(session)
            excess = self._reviews + reviews - self.limit
            if excess <= 0:
                self._reviews += reviews
                return
            waiting, wait = self._reviews, self._seconds_to_score(excess)
        self._on_refused()
        message = (
            f"the service is busy: {waiting} of at most {self.limit} reviews are waiting to be "
            f"scored, no room for {reviews} more; nothing was stored, try again in {wait} s"
        )
        raise Unavailable("overloaded", message, retry_after_s=wait)

    def _count(self, session: Session) -> None:
        since = utcnow() - timedelta(seconds=RATE_WINDOW_S)
        waiting = select(func.count()).select_from(Review).where(Review.status.in_(WAITING))
        scored = select(func.count()).select_from(Review).where(Review.scored_at >= since)
        both = select(waiting.scalar_subquery(), scored.scalar_subquery())
        self._reviews, self._scored = session.execute(both).one()
        self._counted_at = time.monotonic()

    def _seconds_to_score(self, reviews: int) -> int:
        """Retry-After: how long the workers, at their rate over the last RATE_WINDOW_S, take
        to score `reviews`; from 1 s to RATE_WINDOW_S (also when nothing was scored in it)."""
        if not self._scored:
            return RATE_WINDOW_S
        return max(1, min(RATE_WINDOW_S, math.ceil(reviews * RATE_WINDOW_S / self._scored)))
