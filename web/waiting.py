"""Requests that wait for results: a long poll on one review, an event stream of a submission.

A waiting request holds no database connection and runs no loop of its own: it reads the rows,
closes its session, then sleeps on a threading.Event until the process's one pub/sub listener
hears a worker announce one of its reviews finished (sentiment_core/finished.py), and reads
again. N waiting clients cost a web process one Redis connection and N idle threads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.db import Review
from sentiment_core.finished import (
    CHANNEL,
    FINISHED,
    Finished,
    find_reviews,
    read_announcement,
    submission_statuses,
)
from sentiment_core.operations import find_review
from sentiment_core.schemas import ReviewPublic

log = logging.getLogger(__name__)

# How long the listener blocks on a quiet channel before looking up: to stop when asked, and to
# let redis-py ping a connection idle for `health_check_interval`.
LISTEN_S = 5.0
RETRY_S = 2.0  # between attempts to reach Redis again
# An event stream with no news for this long sends a comment, which keeps proxies from closing
# it and shows a client gone, and reads the submission again in case an announcement was lost.
KEEPALIVE_S = 15.0
# An event stream ends after this long even with reviews still to come: each holds a web
# thread, and while nothing is scored (Redis or the workers down) open pages would hold them
# all. A client opens it again; the reviews finished by then come first.
STREAM_LIFETIME_S = 120.0

Key = tuple[str, object]  # ("review", id) or ("submission", id)


class Announcements:
    """One web process's listener on the workers' announcements, and the requests it wakes.

    The listening thread starts with the first waiting request, so it runs in the process that
    serves (after gunicorn forks), and lives as long as the process.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._lock = threading.Lock()
        self._watchers: dict[Key, set[threading.Event]] = {}
        self._listener: threading.Thread | None = None
        self._stopped = threading.Event()

    @contextmanager
    def watch(
        self, *, review: int | None = None, submission: str | None = None
    ) -> Iterator[threading.Event]:
        """An Event that is set, while the block runs, each time the review or a review of the
        submission is announced finished, and whenever announcements may have been missed."""
        keys: list[Key] = [
            key for key in (("review", review), ("submission", submission)) if key[1] is not None
        ]
        news = threading.Event()
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="announcements", daemon=True
                )
                self._listener.start()
            for key in keys:
                self._watchers.setdefault(key, set()).add(news)
        try:
            yield news
        finally:
            with self._lock:
                for key in keys:
                    self._watchers[key].discard(news)
                    if not self._watchers[key]:
                        del self._watchers[key]

    def stop(self) -> None:
        """Stop listening within LISTEN_S (a web process simply exits; tests stop their apps)."""
        self._stopped.set()

    def _listen(self) -> None:
        lost = False  # logged once an outage, not at every retry
        while not self._stopped.is_set():
            try:
                with self._redis.pubsub() as pubsub:
                    pubsub.subscribe(CHANNEL)
                    while not self._stopped.is_set():
                        message = pubsub.get_message(timeout=LISTEN_S)
                        if message is None:
                            continue
                        if message["type"] == "subscribe":
                            if lost:
                                log.warning("hearing the announcements again")
                                lost = False
                            # Anything announced before now went unheard: everyone reads again.
                            self._wake(None)
                        elif message["type"] == "message":
                            self._wake(read_announcement(message["data"]))
            except Exception:
                if self._stopped.is_set():
                    return
                if not lost:
                    log.warning(
                        "lost the announcements of finished reviews; retrying every %g s",
                        RETRY_S,
                        exc_info=True,
                    )
                lost = True
                self._stopped.wait(RETRY_S)

    def _wake(self, finished: list[Finished] | None) -> None:
        """Set the Events of the requests waiting on `finished`, or of all when None."""
        with self._lock:
            if finished is None:
                woken = set().union(*self._watchers.values())
            else:
                keys: set[Key] = {("review", i) for i, _ in finished}
                keys |= {("submission", s) for _, s in finished}
                woken = set().union(*(self._watchers.get(key, ()) for key in keys))
        for news in woken:
            news.set()


def wait_for_review(
    announcements: Announcements, sessions: sessionmaker[Session], review_id: int, wait_s: float
) -> Review | None:
    """The review as soon as it is finished, or as it stands after `wait_s` seconds."""
    if not wait_s:
        return find_review(sessions=sessions, review_id=review_id)
    deadline = time.monotonic() + wait_s
    # Watching before the first read: an announcement between the read and the wait is kept.
    with announcements.watch(review=review_id) as news:
        review = find_review(sessions=sessions, review_id=review_id)
        while review is not None and review.status not in FINISHED:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            news.wait(left)  # woken or not, read again: a lost announcement costs only the wait
            news.clear()
            review = find_review(sessions=sessions, review_id=review_id)
    return review


def submission_events(
    announcements: Announcements, sessions: sessionmaker[Session], submission: str
) -> Iterator[str]:
    """Server-sent events: each review of the submission as it is finished, those already
    finished first; ends after the last, or after `STREAM_LIFETIME_S`."""
    sent: set[int] = set()
    deadline = time.monotonic() + STREAM_LIFETIME_S
    with announcements.watch(submission=submission) as news:
        while time.monotonic() < deadline:
            news.clear()
            statuses = submission_statuses(sessions=sessions, submission=submission)
            new = [i for i, status in statuses.items() if status in FINISHED and i not in sent]
            for review in find_reviews(sessions=sessions, ids=new) if new else []:
                sent.add(review.id)
                yield f"data: {json.dumps(ReviewPublic().dump(review))}\n\n"
            if len(sent) == len(statuses):
                return
            if not news.wait(min(KEEPALIVE_S, max(0.0, deadline - time.monotonic()))):
                yield ": waiting\n\n"
