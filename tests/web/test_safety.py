from sqlalchemy import create_engine, func, select

from sentiment_core.db import Review, make_engine, make_sessionmaker
from tests.web.test_pages import csrf, scored_review
from web.services import get_services


def reviews_stored(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Review))


def test_submissions_are_rate_limited_per_client_across_api_and_form(
    limited_client, sessions
) -> None:
    client = limited_client
    for _ in range(2):
        assert client.post("/api/v1/reviews", json={"text": "a"}).status_code == 202
    token = csrf(client)
    assert client.post("/reviews", data={"text": "b", "csrf_token": token}).status_code == 303
    refused = client.post("/api/v1/reviews", json={"text": "c"})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0
    page = client.post("/reviews", data={"text": "d", "csrf_token": token})
    assert page.status_code == 429 and "3 per 1 minute" in page.get_data(as_text=True)
    other = client.post(
        "/api/v1/reviews", json={"text": "e"}, environ_base={"REMOTE_ADDR": "10.1.1.1"}
    )
    assert other.status_code == 202
    assert reviews_stored(sessions) == 4


def test_a_refusal_says_when_to_retry_even_when_the_counters_cannot_tell(
    limited_client, monkeypatch
) -> None:
    from limits.errors import StorageError

    from web.limits import limiter

    for _ in range(3):
        limited_client.post("/api/v1/reviews", json={"text": "a"})

    def unreachable(*_args):
        raise StorageError(ConnectionError("Redis is down"))

    monkeypatch.setattr(limiter.limiter, "get_window_stats", unreachable)
    refused = limited_client.post("/api/v1/reviews", json={"text": "b"})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


def test_feedback_is_rate_limited_per_client(limited_client, sessions) -> None:
    review_id = scored_review(sessions)
    url = f"/api/v1/reviews/{review_id}/feedback"
    statuses = [limited_client.post(url, json={"label": "negative"}).status_code for _ in range(3)]
    assert statuses == [201, 200, 429]


def test_an_oversized_body_is_refused_before_it_is_read(app, client, sessions, tiny_model):
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    response = client.post("/api/v1/reviews", json={"text": "x" * 2_000})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"
    assert reviews_stored(sessions) == 0


def test_an_unexpected_error_shows_no_internals(app, client, monkeypatch) -> None:
    def explode():
        raise RuntimeError("secret internals at /srv/app.py line 12")

    monkeypatch.setattr("web.api.collect_stats", explode)
    monkeypatch.setattr("web.pages.collect_stats", explode)
    response = client.get("/api/v1/stats")
    assert response.status_code == 500
    assert response.json == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
    page = client.get("/dashboard")
    assert page.status_code == 500 and "secret" not in page.get_data(as_text=True)


def test_an_unreachable_database_answers_503_and_stores_nothing(
    app, client, sessions, tiny_model, tmp_path
) -> None:
    services = get_services(app)
    working = services.sessions
    services.sessions = make_sessionmaker(
        make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    )
    response = client.post("/api/v1/reviews", json={"text": "a fine film"})
    assert response.status_code == 503
    assert response.json["error"] == {
        "code": "database_unavailable",
        "message": "The database is unavailable; nothing was stored. Try again shortly.",
    }
    assert client.get("/history").status_code == 503
    services.sessions = working
    assert client.post("/api/v1/reviews", json={"text": "a fine film"}).status_code == 202
    assert reviews_stored(sessions) == 1


def test_a_database_with_no_connection_free_answers_503_and_stores_nothing(
    app, client, sessions, tiny_model, tmp_path
) -> None:
    services = get_services(app)
    working = services.sessions
    url = working.kw["bind"].url
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    services.sessions = make_sessionmaker(engine)
    with engine.connect():  # the only connection, taken
        response = client.post("/api/v1/reviews", json={"text": "a fine film"})
    assert response.status_code == 503
    assert response.json["error"] == {
        "code": "database_busy",
        "message": "The database is busy; nothing was stored. Try again shortly.",
    }
    assert reviews_stored(sessions) == 0
    assert client.post("/api/v1/reviews", json={"text": "a fine film"}).status_code == 202
    assert reviews_stored(sessions) == 1
    services.sessions = working
    engine.dispose()
