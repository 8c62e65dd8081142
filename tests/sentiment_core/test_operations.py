"""The operations called directly, as the command line calls them: no Flask, no HTTP."""

import pytest
from sqlalchemy import func, select

from sentiment_core.backlog import Backlog
from sentiment_core.db import Review, ReviewStatus, Sentiment
from sentiment_core.errors import Conflict, NotFound, Unavailable
from sentiment_core.operations import (
    activate_model,
    record_feedback,
    rollback_model,
    submit_reviews,
)
from sentiment_core.queue import SCORING_QUEUE, create_celery


@pytest.fixture
def celery(settings, fake_redis):
    return create_celery(settings)


def unlimited() -> Backlog:
    return Backlog(0, on_refused=lambda: pytest.fail("refused without a limit"))


def stored_reviews(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Review))


def test_submitting_without_an_active_model_is_unavailable(sessions, celery, fake_redis) -> None:
    with pytest.raises(Unavailable) as refused:
        submit_reviews(sessions=sessions, celery=celery, backlog=unlimited(), texts=["a fine film"])
    assert refused.value.code == "no_model"
    assert stored_reviews(sessions) == 0
    assert fake_redis.llen(SCORING_QUEUE) == 0


def test_submitting_stores_then_enqueues(sessions, celery, fake_redis, tiny_model) -> None:
    submission = submit_reviews(
        sessions=sessions, celery=celery, backlog=unlimited(), texts=["good", "bad"]
    )
    assert len(submission.review_ids) == 2 and not submission.replayed
    assert stored_reviews(sessions) == 2
    assert fake_redis.llen(SCORING_QUEUE) == 1  # one message for the whole submission


def test_feedback_on_an_unknown_review_is_not_found(sessions) -> None:
    with pytest.raises(NotFound) as refused:
        record_feedback(sessions=sessions, review_id=42, label=Sentiment.positive, client="c")
    assert (refused.value.code, refused.value.message) == ("not_found", "no review 42")


def test_feedback_on_an_unscored_review_is_a_conflict(sessions) -> None:
    with sessions() as session:
        review = Review(text="still queued", status=ReviewStatus.queued)
        session.add(review)
        session.commit()
    with pytest.raises(Conflict) as refused:
        record_feedback(
            sessions=sessions, review_id=review.id, label=Sentiment.negative, client="c"
        )
    assert refused.value.code == "not_scored"


def test_rolling_back_without_an_earlier_version_is_a_conflict(sessions, tiny_model) -> None:
    with pytest.raises(Conflict) as refused:
        rollback_model(sessions=sessions)
    assert refused.value.code == "no_previous_version"


def test_activating_an_unknown_version_is_not_found(sessions, tiny_model) -> None:
    with pytest.raises(NotFound) as refused:
        activate_model(sessions=sessions, version="v99")
    assert refused.value.message == "no model version v99"
