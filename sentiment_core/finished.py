"""Finished reviews: done, or failed for good, so their rows will not change again.

A worker announces the reviews a batch finished, after its commit, in one Redis pub/sub message;
web requests waiting on a review or a submission wake on it and read the rows again. An
announcement is only a hint: a reader always goes back to the database, so a message lost, late
or read twice costs at most a wait, never a wrong answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.db import Review, ReviewStatus

FINISHED = (ReviewStatus.done, ReviewStatus.failed)
# Pub/sub channels are not scoped by the database number in the Redis URL: deployments sharing
# one Redis server hear each other's announcements, which only wakes readers for nothing.
CHANNEL = "sentiment:finished"

Finished = tuple[int, str | None]  # a review's id and submission


def announce_finished(redis: Redis, reviews: Sequence[Finished]) -> None:
    """Tell every web process, in one message, which reviews were just finished."""
    redis.publish(CHANNEL, json.dumps({"reviews": [list(review) for review in reviews]}))


def read_announcement(data: bytes | str) -> list[Finished]:
    return [(int(review_id), submission) for review_id, submission in json.loads(data)["reviews"]]


def submission_statuses(
    *, sessions: sessionmaker[Session], submission: str
) -> dict[int, ReviewStatus]:
    """Each review of the submission, by id, with its status; empty for an unknown one."""
    with sessions() as session:
        rows = session.execute(
            select(Review.id, Review.status).where(Review.submission == submission)
        )
        return {review_id: status for review_id, status in rows}


def find_reviews(*, sessions: sessionmaker[Session], ids: Sequence[int]) -> list[Review]:
    """The reviews with these ids (at most a submission's), in order of id."""
    with sessions() as session:
        return list(session.scalars(select(Review).where(Review.id.in_(ids)).order_by(Review.id)))
