"""Load shedding over HTTP: a full backlog answers 503 `overloaded` with Retry-After and stores
nothing, idempotency keys keep their promise, the page says why, and the dashboard, the stats
and /metrics show the backlog and the submissions refused."""

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from sentiment_core.db import IdempotencyKey, Review, ReviewStatus, utcnow
from tests.web.test_api import make_done_review
from tests.web.test_pages import csrf
from web.services import get_services

LIMIT = 3


@pytest.fixture
def app(settings, make_app, tiny_model):
    app = make_app(replace(settings, max_backlog=LIMIT))
    get_services(app).backlog.refresh_s = 0  # count the database on every submission
    return app


def wait(sessions, n: int, status: ReviewStatus = ReviewStatus.queued) -> None:
    """Put `n` reviews in the backlog, as other clients' submissions would."""
    with sessions() as session:
        session.add_all(Review(text="waiting", status=status) for _ in range(n))
        session.commit()


def score_20_half_a_minute_ago(sessions) -> None:
    """The workers' recent rate: 20 reviews in the last minute, so room for one more in 3 s."""
    with sessions() as session:
        scored_at = utcnow() - timedelta(seconds=30)
        session.add_all(
            Review(text="scored", status=ReviewStatus.done, scored_at=scored_at) for _ in range(20)
        )
        session.commit()


def drain(sessions) -> None:
    with sessions() as session:
        session.execute(update(Review).values(status=ReviewStatus.done))
        session.commit()


def count(sessions, model=Review) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def assert_shed(response) -> None:
    assert response.status_code == 503
    assert response.json["error"]["code"] == "overloaded"
    assert re.fullmatch("[1-9][0-9]*", response.headers["Retry-After"])


def refused_so_far(client) -> int:
    return client.get("/api/v1/stats").json["backlog"]["refused"]


def test_below_the_limit_is_accepted_and_at_it_refused_with_retry_after(client, sessions) -> None:
    wait(sessions, LIMIT - 1)
    score_20_half_a_minute_ago(sessions)
    assert client.post("/api/v1/reviews", json={"text": "fits"}).status_code == 202
    response = client.post("/api/v1/reviews", json={"text": "one too many"})
    assert_shed(response)
    assert response.headers["Retry-After"] == "3"  # not the rate limiter's window
    assert "nothing was stored, try again in 3 s" in response.json["error"]["message"]
    assert count(sessions) == LIMIT + 20


def test_a_batch_that_would_cross_the_limit_is_refused_whole(client, sessions) -> None:
    wait(sessions, LIMIT - 2)
    batch = {"reviews": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}
    assert_shed(client.post("/api/v1/reviews", json=batch))
    assert count(sessions) == LIMIT - 2
    batch["reviews"].pop()
    assert client.post("/api/v1/reviews", json=batch).status_code == 202


def test_an_accepted_key_is_replayed_while_shedding(client, sessions) -> None:
    wait(sessions, LIMIT - 1)
    headers = {"Idempotency-Key": "accepted-1"}
    first = client.post("/api/v1/reviews", json={"text": "kept"}, headers=headers)
    assert first.status_code == 202
    again = client.post("/api/v1/reviews", json={"text": "kept"}, headers=headers)
    assert again.status_code == 202 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/reviews", json={"text": "kept"}, headers={"Idempotency-Key": "2"})
    assert_shed(other)
    assert count(sessions) == LIMIT


def test_a_refused_key_is_not_kept_and_its_retry_is_accepted_later(client, sessions) -> None:
    wait(sessions, LIMIT)
    headers = {"Idempotency-Key": "refused-1"}
    assert_shed(client.post("/api/v1/reviews", json={"text": "later"}, headers=headers))
    assert count(sessions, IdempotencyKey) == 0
    drain(sessions)  # the workers catch up
    retried = client.post("/api/v1/reviews", json={"text": "later"}, headers=headers)
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert client.get(retried.json["url"]).json["text"] == "later"


def test_the_stats_the_dashboard_and_metrics_show_the_backlog_and_the_refusals(
    client, sessions
) -> None:
    wait(sessions, LIMIT - 1)
    wait(sessions, 1, ReviewStatus.scoring)
    before = refused_so_far(client)
    for _ in range(2):
        assert_shed(client.post("/api/v1/reviews", json={"text": "refused"}))
    backlog = client.get("/api/v1/stats").json["backlog"]
    assert backlog == {"reviews": LIMIT, "seconds": None, "limit": LIMIT, "refused": before + 2}
    page = client.get("/dashboard").get_data(as_text=True)
    assert f'id="backlog">{LIMIT}<' in page
    assert f"limit {LIMIT}; {before + 2} submissions refused" in page
    lines = client.get("/metrics").get_data(as_text=True).splitlines()
    assert f"sentiment_backlog {LIMIT}.0" in lines
    assert f"sentiment_backlog_limit {LIMIT}.0" in lines
    assert f"sentiment_submissions_refused_total {before + 2}.0" in lines


def test_the_backlog_is_reported_in_seconds_of_scoring_at_the_recent_rate(client, sessions) -> None:
    wait(sessions, 2)
    make_done_review(sessions)  # one review scored in the stats' window of 10 minutes
    assert client.get("/api/v1/stats").json["backlog"]["seconds"] == 2 * 600


def test_the_form_says_the_service_is_busy_and_keeps_the_text(client, sessions) -> None:
    wait(sessions, LIMIT)
    score_20_half_a_minute_ago(sessions)
    response = client.post("/reviews", data={"text": "Worth the wait", "csrf_token": csrf(client)})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "3")
    page = response.get_data(as_text=True)
    assert re.search(r'role="alert">the service is busy: 3 of at most 3 reviews .* in 3 s<', page)
    assert ">Worth the wait</textarea>" in page
    lines = {"lines": "one\ntwo", "csrf_token": csrf(client)}
    assert "the service is busy" in client.post("/reviews/batch", data=lines).get_data(as_text=True)
    assert count(sessions) == LIMIT + 20
