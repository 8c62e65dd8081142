"""Results pushed, not polled: GET /api/v1/reviews/<id>?wait=S and a submission's event stream,
woken by the announcements a worker publishes (here on fake Redis, as score_batch does)."""

import json
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, update

from sentiment_core.db import Review, ReviewStatus, Sentiment, utcnow
from sentiment_core.finished import CHANNEL, announce_finished
from web import waiting
from web.services import get_services

SUBMISSION = "5" * 32


def add_reviews(sessions, *statuses: ReviewStatus, submission: str = SUBMISSION) -> list[int]:
    with sessions() as session:
        rows = [
            Review(text=f"review {i}", status=status, submission=submission)
            for i, status in enumerate(statuses)
        ]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def finish(sessions, review_id: int, *, failed: bool = False, announce=None) -> None:
    """What a worker does: write the result and commit, then announce it on `announce`."""
    if failed:
        values = {"status": ReviewStatus.failed, "error": "failed on attempt 3 of 3: broken"}
    else:
        values = {
            "status": ReviewStatus.done,
            "score": 0.9,
            "sentiment": Sentiment.positive,
            "model_version": "v1",
            "scored_at": utcnow(),
        }
    with sessions() as session:
        session.execute(update(Review).where(Review.id == review_id).values(**values))
        session.commit()
    if announce is not None:
        announce_finished(announce, [(review_id, SUBMISSION)])


def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Request(threading.Thread):
    """A GET through the app in a thread of its own, as gunicorn's threads serve one."""

    def __init__(self, app, url: str) -> None:
        super().__init__(daemon=True)
        self.client, self.url = app.test_client(), url
        self.started_at = time.monotonic()

    def run(self) -> None:
        self.response = self.client.get(self.url)
        self.took = time.monotonic() - self.started_at

    def answer(self) -> dict:
        self.join(10)
        assert not self.is_alive()
        assert self.response.status_code == 200
        return self.response.get_json()


def start_waiting(app, url: str) -> Request:
    """Starts a GET and returns once it has read the review, given its connection back and is
    waiting."""
    engine = get_services(app).sessions.kw["bind"]
    reads: list[object] = []

    def count(*_) -> None:
        reads.append(None)

    event.listen(engine, "checkout", count)
    request = Request(app, url)
    request.start()
    until(lambda: len(reads) > 0 and engine.pool.checkedout() == 0)
    event.remove(engine, "checkout", count)
    return request


@pytest.fixture
def listening(app, sessions, fake_redis):
    """The app with its listener subscribed, past the wake-up every subscription gives the
    requests then waiting: what wakes a request in a test is the test's own announcement."""
    (review_id,) = add_reviews(sessions, ReviewStatus.queued, submission="warm-up")
    request = start_waiting(app, f"/api/v1/reviews/{review_id}?wait=20")
    until(lambda: fake_redis.pubsub_numsub(CHANNEL) == [(CHANNEL.encode(), 1)])
    finish(sessions, review_id, announce=fake_redis)
    # Answered after the subscription's wake-up or this announcement, whichever the listener
    # read last: both are behind it now.
    assert request.answer()["status"] == "done"
    return app


def test_a_wait_answers_as_soon_as_the_worker_finishes(listening, sessions, fake_redis) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    request = start_waiting(listening, f"/api/v1/reviews/{review_id}?wait=20")
    finish(sessions, review_id, announce=fake_redis)
    body = request.answer()
    assert body["status"] == "done" and body["sentiment"] == "positive"
    assert request.took < 5


def test_a_wait_sees_a_failure(listening, sessions, fake_redis) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.scoring)
    request = start_waiting(listening, f"/api/v1/reviews/{review_id}?wait=20")
    finish(sessions, review_id, failed=True, announce=fake_redis)
    body = request.answer()
    assert body["status"] == "failed" and body["error"] == "failed on attempt 3 of 3: broken"
    assert request.took < 5


def test_a_wait_times_out_with_the_status_it_has(client, sessions, fake_redis) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    started = time.monotonic()
    response = client.get(f"/api/v1/reviews/{review_id}?wait=1.5")
    took = time.monotonic() - started
    assert response.status_code == 200 and response.get_json()["status"] == "queued"
    assert 1.5 <= took < 3


def test_a_lost_announcement_costs_only_the_wait(listening, sessions) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    request = start_waiting(listening, f"/api/v1/reviews/{review_id}?wait=1.5")
    finish(sessions, review_id)  # committed, never announced
    assert request.answer()["status"] == "done"  # read again at the deadline
    assert 1.5 <= request.took < 3


def test_a_waiting_request_holds_no_database_connection(listening, sessions, fake_redis) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    request = start_waiting(listening, f"/api/v1/reviews/{review_id}?wait=20")
    pool = get_services(listening).sessions.kw["bind"].pool
    for _ in range(5):
        time.sleep(0.1)
        assert request.is_alive() and pool.checkedout() == 0
    finish(sessions, review_id, announce=fake_redis)
    assert request.answer()["status"] == "done"
    with get_services(listening).sessions() as session:
        session.connection()
        assert pool.checkedout() == 1  # the count does see a connection in use


def test_many_waiting_requests_share_one_redis_connection(listening, sessions, fake_redis) -> None:
    ids = add_reviews(sessions, *[ReviewStatus.queued] * 5)
    requests = [start_waiting(listening, f"/api/v1/reviews/{i}?wait=20") for i in ids]
    assert fake_redis.pubsub_numsub(CHANNEL) == [(CHANNEL.encode(), 1)]
    for review_id in ids:
        finish(sessions, review_id, announce=fake_redis)
    assert [request.answer()["status"] for request in requests] == ["done"] * 5
    assert max(request.took for request in requests) < 5


@pytest.mark.parametrize("wait", ["0", "0.5", "30", "2.5e-1"])
def test_a_finished_review_is_answered_at_once_whatever_the_wait(client, sessions, wait) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    finish(sessions, review_id)
    started = time.monotonic()
    response = client.get(f"/api/v1/reviews/{review_id}?wait={wait}")
    assert response.status_code == 200 and response.get_json()["status"] == "done"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("wait", ["", "soon", "-1", "30.5", "31", "nan", "inf", " 5", "1_0", "٥"])
def test_a_bad_wait_is_refused(client, sessions, wait) -> None:
    (review_id,) = add_reviews(sessions, ReviewStatus.queued)
    response = client.get(f"/api/v1/reviews/{review_id}", query_string={"wait": wait})
    assert response.status_code == 400
    assert response.get_json()["error"] == {
        "code": "invalid_parameter",
        "message": "wait must be a number of seconds from 0 to 30",
    }


def test_waiting_on_an_unknown_review_is_not_found_at_once(client) -> None:
    started = time.monotonic()
    response = client.get("/api/v1/reviews/99999?wait=20")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert time.monotonic() - started < 1


def events_of(chunk: bytes) -> list[dict]:
    lines = chunk.decode().splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def test_the_event_stream_sends_each_review_as_it_finishes_then_closes(
    client, sessions, fake_redis
) -> None:
    done, queued, scoring = add_reviews(
        sessions, ReviewStatus.done, ReviewStatus.queued, ReviewStatus.scoring
    )
    finish(sessions, done)
    started = time.monotonic()
    response = client.get(f"/api/v1/submissions/{SUBMISSION}/events", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    stream = iter(response.response)
    # Already finished when the stream opened: sent first, as GET /api/v1/reviews/<id> has it.
    assert events_of(next(stream)) == [client.get(f"/api/v1/reviews/{done}").get_json()]
    finish(sessions, scoring, failed=True, announce=fake_redis)
    (failed,) = events_of(next(stream))
    assert (failed["id"], failed["status"], failed["submission"]) == (scoring, "failed", SUBMISSION)
    finish(sessions, queued, announce=fake_redis)
    (scored,) = events_of(next(stream))
    assert (scored["id"], scored["status"], scored["sentiment"]) == (queued, "done", "positive")
    assert next(stream, None) is None  # the last review is finished: the stream ends
    assert time.monotonic() - started < 5  # on the announcements, not the 15 s re-check
    response.close()


def test_an_event_stream_ends_after_its_lifetime_with_reviews_still_to_come(
    client, sessions, fake_redis, monkeypatch
) -> None:
    monkeypatch.setattr(waiting, "STREAM_LIFETIME_S", 0.5)
    monkeypatch.setattr(waiting, "KEEPALIVE_S", 0.2)
    add_reviews(sessions, ReviewStatus.queued)
    started = time.monotonic()
    response = client.get(f"/api/v1/submissions/{SUBMISSION}/events")
    assert response.status_code == 200 and events_of(response.data) == []
    assert b": waiting" in response.data and 0.5 <= time.monotonic() - started < 3


def test_a_finished_submission_streams_its_reviews_and_ends(client, sessions) -> None:
    ids = add_reviews(sessions, ReviewStatus.queued, ReviewStatus.queued)
    finish(sessions, ids[0])
    finish(sessions, ids[1], failed=True)
    response = client.get(f"/api/v1/submissions/{SUBMISSION}/events")
    assert response.status_code == 200
    assert [(e["id"], e["status"]) for e in events_of(response.data)] == [
        (ids[0], "done"),
        (ids[1], "failed"),
    ]


def test_the_events_of_an_unknown_submission_are_not_found(client) -> None:
    response = client.get(f"/api/v1/submissions/{'0' * 32}/events")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_an_outage_of_the_announcements_is_logged_once_and_its_end_too(monkeypatch, caplog) -> None:
    import fakeredis

    monkeypatch.setattr(waiting, "RETRY_S", 0.01)
    server = fakeredis.FakeServer()
    server.connected = False
    announcements = waiting.Announcements(fakeredis.FakeRedis(server=server))
    with caplog.at_level("WARNING", logger=waiting.__name__):
        with announcements.watch(review=1) as news:
            time.sleep(0.3)  # many retries
            lost = [r.getMessage() for r in caplog.records]
            server.connected = True
            until(news.is_set)  # heard again: everyone reads again
        announcements.stop()
    assert lost == ["lost the announcements of finished reviews; retrying every 0.01 s"]
    assert [r.getMessage() for r in caplog.records][1:] == ["hearing the announcements again"]
