"""The explanation task's delivery rules, on the real database and the tiny model: computed
once, failures retried then shown, a dead worker's claim dropped by the reconciler, and a
request after the active version changed answered for the new version beside the old one."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from sentiment_core.db import Explanation, ExplanationStatus, Review, ReviewStatus, Sentiment
from sentiment_core.operations import find_explanation, request_explanation
from sentiment_core.queue import EXPLANATION_QUEUE, create_celery
from sentiment_core.registry import activate_version
from tests.conftest import add_model
from tests.factories import POSITIVE
from worker.explaining import explain_one, requeue_explanations
from worker.scoring import ModelCache


@pytest.fixture
def celery(settings, fake_redis):
    return create_celery(settings)


@pytest.fixture
def scored(sessions, tiny_model) -> int:
    with sessions() as session:
        review = Review(
            text=POSITIVE[0], status=ReviewStatus.done, score=0.9, sentiment=Sentiment.positive
        )
        session.add(review)
        session.commit()
        return review.id


def queued_messages(fake_redis) -> int:
    return fake_redis.llen(EXPLANATION_QUEUE)


def test_a_request_is_queued_once_and_computed_once(sessions, celery, fake_redis, scored) -> None:
    explanation, queued = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    assert queued and explanation.status is ExplanationStatus.queued
    again, queued_again = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    assert (again.id, queued_again) == (explanation.id, False)
    assert queued_messages(fake_redis) == 1
    models = ModelCache()
    assert explain_one(sessions, models, explanation.id)
    assert not explain_one(sessions, models, explanation.id)  # a duplicate message does nothing
    done = find_explanation(sessions=sessions, review_id=scored)
    assert done.status is ExplanationStatus.done and done.attempts == 1
    assert [t["text"] for t in done.tokens][:2] == ["a", "wonderful"]
    assert done.running_scores[-1]["score"] == pytest.approx(done.score, abs=1e-5)


def test_a_lost_message_or_a_dead_workers_claim_is_sent_again(
    sessions, celery, fake_redis, scored
) -> None:
    explanation, _ = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    fake_redis.delete(EXPLANATION_QUEUE)  # the message is lost
    later = timedelta(minutes=5)
    assert requeue_explanations(sessions, celery, queued_for=later, claimed_for=later) == 0
    assert requeue_explanations(sessions, celery, queued_for=timedelta(0), claimed_for=later) == 1
    assert queued_messages(fake_redis) == 1
    with sessions() as session:  # a worker claims it and dies
        session.get(Explanation, explanation.id).claim = "dead-worker"
        session.commit()
    assert not explain_one(sessions, ModelCache(), explanation.id)  # held by the dead claim
    assert requeue_explanations(sessions, celery, queued_for=later, claimed_for=later) == 0
    assert requeue_explanations(sessions, celery, queued_for=later, claimed_for=timedelta(0)) == 1
    assert explain_one(sessions, ModelCache(), explanation.id)
    assert find_explanation(sessions=sessions, review_id=scored).status is ExplanationStatus.done


def test_a_failure_is_retried_then_shown_with_its_reason(
    sessions, celery, fake_redis, scored, monkeypatch
) -> None:
    def broken(scorer, text):
        raise ValueError("the model cannot read this")

    explanation, _ = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    models = ModelCache()
    with monkeypatch.context() as patch:
        patch.setattr("worker.explaining.explain", broken)
        assert not explain_one(sessions, models, explanation.id, max_attempts=2, app=celery)
        assert queued_messages(fake_redis) == 2  # the request's and the retry's
        assert explain_one(sessions, models, explanation.id, max_attempts=2, app=celery)
    failed = find_explanation(sessions=sessions, review_id=scored)
    assert failed.status is ExplanationStatus.failed
    assert failed.error == "failed on attempt 2: ValueError: the model cannot read this"
    retried, queued = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    assert queued and retried.id == explanation.id and retried.status is ExplanationStatus.queued


def test_a_new_active_version_gets_its_own_explanation_and_the_old_one_is_kept(
    settings, sessions, celery, scored, tiny_artifact
) -> None:
    first, _ = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    second_version = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        activate_version(session, second_version)
    # Requested for the first version, computed after the switch: still by the first version.
    models = ModelCache()
    assert explain_one(sessions, models, first.id)
    second, queued = request_explanation(sessions=sessions, celery=celery, review_id=scored)
    assert queued and second.id != first.id and second.model_version == second_version
    assert explain_one(sessions, models, second.id)
    with sessions() as session:
        rows = session.scalars(select(Explanation).order_by(Explanation.id)).all()
    assert [(r.model_version, r.status) for r in rows] == [
        (first.model_version, ExplanationStatus.done),
        (second_version, ExplanationStatus.done),
    ]
    assert find_explanation(sessions=sessions, review_id=scored).model_version == second_version
