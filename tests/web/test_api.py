import base64
import json

import pytest
import redis
from sqlalchemy import func, select

from core.db import Feedback, Review, ReviewStatus
from core.queue import SCORE_TASK, SCORING_QUEUE
from core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS


def queued_messages(fake_redis) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on the scoring queue, oldest first."""
    out = []
    for raw in reversed(fake_redis.lrange(SCORING_QUEUE, 0, -1)):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def count(sessions, model=Review) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_submitting_one_review_stores_and_enqueues_it(
    client, sessions, fake_redis, tiny_model
) -> None:
    response = client.post("/api/v1/reviews", json={"text": "  A lovely film.  "})
    assert response.status_code == 202
    body = response.get_json()
    assert body == {"id": body["id"], "status": "queued", "url": f"/api/v1/reviews/{body['id']}"}
    assert queued_messages(fake_redis) == [(SCORE_TASK, [[body["id"]]])]
    shown = client.get(body["url"]).get_json()
    assert shown["status"] == "queued" and shown["sentiment"] is None and shown["score"] is None
    with sessions() as session:
        assert session.get(Review, body["id"]).text == "A lovely film."


def test_submitting_a_batch_enqueues_every_review(client, fake_redis, tiny_model) -> None:
    response = client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]})
    assert response.status_code == 202
    ids = response.get_json()["ids"]
    assert len(ids) == 2
    assert queued_messages(fake_redis) == [(SCORE_TASK, [ids])]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"json": ["a list"]}, 400, "invalid_json"),
        ({"json": {}}, 400, "invalid_body"),
        ({"json": {"text": "a", "reviews": []}}, 400, "invalid_body"),
        ({"json": {"text": 5}}, 400, "invalid_type"),
        ({"json": {"text": None}}, 400, "invalid_type"),
        ({"json": {"text": ""}}, 422, "empty_text"),
        ({"json": {"text": " \n\t "}}, 422, "empty_text"),
        ({"json": {"text": "x" * (MAX_REVIEW_CHARS + 1)}}, 413, "text_too_long"),
        ({"json": {"reviews": "a"}}, 400, "invalid_type"),
        ({"json": {"reviews": []}}, 400, "invalid_type"),
        ({"json": {"reviews": ["a"]}}, 400, "invalid_type"),
        ({"json": {"reviews": [{"text": "ok"}, {"text": ""}]}}, 422, "empty_text"),
        ({"json": {"reviews": [{"text": "a"}] * (MAX_BATCH_REVIEWS + 1)}}, 413, "too_many_reviews"),
    ],
)
def test_bad_submissions_are_refused_and_store_nothing(
    client,
    sessions,
    fake_redis,
    tiny_model,
    kwargs,
    status,
    code,
) -> None:
    response = client.post("/api/v1/reviews", **kwargs)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert count(sessions) == 0
    assert queued_messages(fake_redis) == []


def test_submissions_wait_for_a_model(client, sessions) -> None:
    response = client.post("/api/v1/reviews", json={"text": "hello"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "no_model"
    assert count(sessions) == 0


def test_an_unreachable_broker_fails_the_reviews_visibly(
    app, client, sessions, tiny_model, monkeypatch
) -> None:
    def refuse(*args, **kwargs):
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(app.extensions["celery"], "send_task", refuse)
    response = client.post("/api/v1/reviews", json={"text": "hello"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    with sessions() as session:
        (review,) = session.scalars(select(Review))
    assert review.status is ReviewStatus.failed
    assert review.error == "the scoring queue was unavailable"


def test_unknown_review_is_404(client) -> None:
    response = client.get("/api/v1/reviews/999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/nothing-here").get_json()["error"]["code"] == "not_found"


def make_done_review(sessions) -> int:
    from core.db import Sentiment, utcnow

    with sessions() as session:
        review = Review(
            text="ok",
            status=ReviewStatus.done,
            sentiment=Sentiment.positive,
            score=0.9,
            model_version="v1",
            scored_at=utcnow(),
        )
        session.add(review)
        session.commit()
        return review.id


def test_a_scored_review_shows_its_result(client, sessions) -> None:
    review_id = make_done_review(sessions)
    body = client.get(f"/api/v1/reviews/{review_id}").get_json()
    assert body["status"] == "done" and body["sentiment"] == "positive"
    assert body["score"] == 0.9 and body["model_version"] == "v1" and body["error"] is None
    assert body["created_at"].endswith("+00:00") and body["scored_at"].endswith("+00:00")


def test_feedback_is_recorded(client, sessions) -> None:
    review_id = make_done_review(sessions)
    response = client.post(f"/api/v1/reviews/{review_id}/feedback", json={"label": "negative"})
    assert response.status_code == 201
    assert response.get_json()["label"] == "negative"
    with sessions() as session:
        (feedback,) = session.scalars(select(Feedback))
    assert feedback.review_id == review_id and feedback.label.value == "negative"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"label": "meh"}, 422, "invalid_label"),
        ([], 400, "invalid_json"),
        ({}, 422, "invalid_label"),
    ],
)
def test_bad_feedback_is_refused(client, sessions, payload, status, code) -> None:
    review_id = make_done_review(sessions)
    response = client.post(f"/api/v1/reviews/{review_id}/feedback", json=payload)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert count(sessions, Feedback) == 0


def test_feedback_needs_a_scored_review(client, sessions, tiny_model) -> None:
    missing = client.post("/api/v1/reviews/999/feedback", json={"label": "positive"})
    assert missing.status_code == 404
    review_id = client.post("/api/v1/reviews", json={"text": "x"}).get_json()["id"]
    early = client.post(f"/api/v1/reviews/{review_id}/feedback", json={"label": "positive"})
    assert (early.status_code, early.get_json()["error"]["code"]) == (409, "not_scored")
    assert count(sessions, Feedback) == 0


def test_models_lists_the_registry(client, tiny_model) -> None:
    (model,) = client.get("/api/v1/models").get_json()["models"]
    assert model["version"] == tiny_model and model["active"] is True
    assert model["metrics"]["test_accuracy"] == 1.0


def test_health_and_readiness(client, fake_redis, tiny_model) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {
        "ready": True,
        "checks": {"database": "ok", "broker": "ok", "model": tiny_model},
    }


def test_not_ready_without_a_model_or_a_broker(app, client) -> None:
    app.extensions["redis"] = redis.Redis(port=1, socket_connect_timeout=0.2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "ok",
        "broker": "unavailable",
        "model": "none active",
    }


def test_metrics_report_queue_depth_and_reviews_by_status(client, sessions, tiny_model) -> None:
    client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]})
    make_done_review(sessions)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    lines = response.get_data(as_text=True).splitlines()
    assert "sentiment_queue_depth 1.0" in lines  # one message for the submission
    assert 'sentiment_reviews{status="queued"} 2.0' in lines
    assert 'sentiment_reviews{status="done"} 1.0' in lines
    assert 'sentiment_reviews{status="failed"} 0.0' in lines
