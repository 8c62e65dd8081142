"""Accepting reviews: validation, storage and enqueueing, shared by the API and the pages."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db import Review, ReviewStatus
from core.queue import enqueue_reviews
from core.registry import active_version
from core.settings import MAX_REVIEW_CHARS

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A request the service refuses, with the HTTP status and a message for the user."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def clean_text(value: object, where: str = "text") -> str:
    if not isinstance(value, str):
        raise Rejected(400, "invalid_type", f"{where} must be a string")
    text = value.strip()
    if not text:
        raise Rejected(422, "empty_text", f"{where} is empty")
    if len(text) > MAX_REVIEW_CHARS:
        message = f"{where} has {len(text)} characters; the limit is {MAX_REVIEW_CHARS}"
        raise Rejected(413, "text_too_long", message)
    return text


def sessions() -> Session:
    return current_app.extensions["sessions"]()


def submit_reviews(texts: list[str]) -> list[int]:
    """Store the reviews, then enqueue them; returns their ids.

    Reviews are committed before they are enqueued, so a worker always finds its row. If the
    broker refuses them they are marked failed with the reason and the caller gets a 503.
    """
    with sessions() as session:
        if active_version(session) is None:
            raise Rejected(503, "no_model", "no model is active yet; try again shortly")
        reviews = [Review(text=text, status=ReviewStatus.queued) for text in texts]
        session.add_all(reviews)
        session.commit()
        ids = [review.id for review in reviews]
        try:
            enqueue_reviews(current_app.extensions["celery"], ids)
        except Exception as exc:
            log.exception("enqueueing %d reviews failed", len(ids))
            session.execute(
                update(Review)
                .where(Review.id.in_(ids))
                .values(status=ReviewStatus.failed, error="the scoring queue was unavailable")
            )
            session.commit()
            raise Rejected(503, "queue_unavailable", "the scoring queue is unavailable") from exc
    return ids


def get_review(review_id: int) -> Review | None:
    with sessions() as session:
        return session.scalar(select(Review).where(Review.id == review_id))
