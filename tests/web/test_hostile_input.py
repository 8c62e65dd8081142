"""Hostile input through the JSON API and the pages: each is refused with a precise 4xx and leaves
nothing behind, or is stored verbatim and shown escaped."""

import io
import json
import re

import pytest
from markupsafe import escape
from sqlalchemy import func, inspect, select

from sentiment_core.db import Feedback, IdempotencyKey, ModelVersion, Review
from sentiment_core.queue import SCORING_QUEUE
from tests.conftest import ADMIN_TOKEN
from tests.web.test_pages import csrf, scored_review

SQL_INJECTIONS = [
    "'); DROP TABLE reviews; --",
    "1 OR 1=1",
    "' OR '1'='1",
    "1; DELETE FROM reviews",
    '" UNION SELECT * FROM model_versions --',
]
HTML_INJECTIONS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(document.cookie)",
    "' onmouseover='alert(1)",
    "</textarea><script>alert(1)</script>",
    "</blockquote><a href=javascript:alert(1)>click</a>",
    "{{ 7 * 7 }}{% raw %}",
]
INVISIBLE_TEXTS = [
    "\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",
    " \t\r\n\u00a0\u2003\u3000",
    "\u00ad\u202e\u2066",
    "\x01\x02\x1b\x7f",
]
DEEP = 100_000  # levels of nesting, far past Python's recursion limit


@pytest.fixture
def ledger(sessions, fake_redis):
    """Reads what the database and the queue hold, to compare before and after a request."""

    def read() -> dict:
        with sessions() as session:
            rows = {
                model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Review, Feedback, IdempotencyKey, ModelVersion)
            }
            tables = sorted(inspect(session.get_bind()).get_table_names())
        return {"rows": rows, "tables": tables, "queued": fake_redis.llen(SCORING_QUEUE)}

    return read


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]


def stored_text(client, review_id: int) -> str:
    return client.get(f"/api/v1/reviews/{review_id}").json["text"]


def submit(client, text: str) -> int:
    response = client.post("/api/v1/reviews", json={"text": text})
    assert response.status_code == 202, response.json
    return response.json["id"]


def multipart(boundary: str, **fields: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# Oversized bodies (the API's 413 is in test_safety.py)


def test_an_oversized_form_is_refused_and_stores_nothing(app, client, ledger, tiny_model):
    token = csrf(client)
    before = ledger()
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    one = client.post("/reviews", data={"text": "x" * 2_000, "csrf_token": token})
    assert one.status_code == 413 and "<!doctype html>" in one.get_data(as_text=True)
    upload = (io.BytesIO(b"text\n" + b"x" * 2_000 + b"\n"), "reviews.csv")
    many = client.post(
        "/reviews/batch",
        data={"csrf_token": token, "file": upload},
        content_type="multipart/form-data",
    )
    assert many.status_code == 413
    assert ledger() == before


# Bodies that are not UTF-8


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "caf\xe9, a Latin-1 review"}',
        b'{"text": "an encoded surrogate \xed\xa0\x80"}',
        b'{"text": "an overlong slash \xc0\xaf"}',
        b"\xff\xfe{\x00}\x00",
    ],
)
def test_a_json_body_that_is_not_utf8_is_400(client, ledger, tiny_model, body) -> None:
    before = ledger()
    response = client.post("/api/v1/reviews", data=body, content_type="application/json")
    refused(response, 400, "invalid_encoding")
    assert ledger() == before


def test_feedback_that_is_not_utf8_is_400(client, sessions, ledger) -> None:
    review_id = scored_review(sessions)
    before = ledger()
    response = client.post(
        f"/api/v1/reviews/{review_id}/feedback",
        data=b'{"label": "positive\xff"}',
        content_type="application/json",
    )
    refused(response, 400, "invalid_encoding")
    assert ledger() == before


def test_a_lone_surrogate_in_json_is_refused(client, ledger, tiny_model) -> None:
    before = ledger()
    response = client.post(
        "/api/v1/reviews", data='{"text": "half a pair \\ud83d"}', content_type="application/json"
    )
    refused(response, 422, "invalid_text")
    assert ledger() == before


@pytest.mark.parametrize("text", [b"caf\xe9", b"caf%E9", b"caf%C3", b"%ED%A0%80"])
def test_a_form_that_is_not_utf8_is_400(client, ledger, tiny_model, text) -> None:
    token = csrf(client).encode()
    before = ledger()
    response = client.post(
        "/reviews",
        data=b"csrf_token=" + token + b"&text=" + text,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "The form was not sent as UTF-8 text." in response.get_data(as_text=True)
    assert ledger() == before


def test_a_percent_encoded_utf8_form_is_stored_decoded(client, sessions, tiny_model) -> None:
    response = client.post(
        "/reviews",
        data=b"csrf_token=" + csrf(client).encode() + b"&text=caf%C3%A9+cr%C3%A8me",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 303
    assert stored_text(client, int(response.headers["Location"].rsplit("/", 1)[1])) == "café crème"


def test_a_multipart_field_that_is_not_utf8_is_400(client, ledger, tiny_model) -> None:
    boundary = "hostile-boundary"
    body = multipart(boundary, csrf_token=csrf(client).encode(), lines=b"good film\nbad \xff film")
    before = ledger()
    response = client.post(
        "/reviews/batch", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400
    assert "The form was not sent as UTF-8 text." in response.get_data(as_text=True)
    assert ledger() == before


# Deeply nested JSON


@pytest.mark.parametrize(
    "body",
    ["[" * DEEP, '{"text": ' + "[" * DEEP, '{"a": ' * DEEP, "[" * DEEP + "]" * DEEP],
)
def test_deeply_nested_json_is_400(client, sessions, ledger, tiny_model, body) -> None:
    review_id = scored_review(sessions)
    before = ledger()
    for url in ("/api/v1/reviews", f"/api/v1/reviews/{review_id}/feedback"):
        response = client.post(url, data=body, content_type="application/json")
        refused(response, 400, "invalid_json")
    assert ledger() == before


def test_a_deeply_nested_json_line_in_an_upload_is_400(client, ledger, tiny_model) -> None:
    token = csrf(client)
    before = ledger()
    content = b'{"text": "fine"}\n' + b"[" * DEEP + b"\n"
    response = client.post(
        "/reviews/batch",
        data={"csrf_token": token, "file": (io.BytesIO(content), "reviews.jsonl")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "reviews.jsonl line 2 is not JSON" in response.get_data(as_text=True)
    assert ledger() == before


# SQL injection


def test_sql_injection_in_review_text_is_stored_verbatim(client, ledger, tiny_model) -> None:
    before = ledger()
    ids = [submit(client, text) for text in SQL_INJECTIONS]
    batch = client.post("/api/v1/reviews", json={"reviews": [{"text": t} for t in SQL_INJECTIONS]})
    assert batch.status_code == 202
    ids += batch.json["ids"]
    token = csrf(client)
    for text in SQL_INJECTIONS:
        page = client.post("/reviews", data={"text": text, "csrf_token": token})
        assert page.status_code == 303
        ids.append(int(page.headers["Location"].rsplit("/", 1)[1]))
    assert [stored_text(client, i) for i in ids] == SQL_INJECTIONS * 3
    after = ledger()
    assert after["tables"] == before["tables"]
    assert after["rows"]["reviews"] == before["rows"]["reviews"] + 3 * len(SQL_INJECTIONS)


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_query_parameters_is_refused_or_inert(
    client, sessions, ledger, injection
) -> None:
    scored_review(sessions)
    before = ledger()
    for name in ("status", "sentiment", "page", "per_page"):
        refused(
            client.get("/api/v1/reviews", query_string={name: injection}), 400, "invalid_parameter"
        )
        assert client.get("/history", query_string={name: injection}).status_code == 400
    found = client.get("/api/v1/reviews", query_string={"submission": injection})
    page = client.get("/history", query_string={"submission": injection})
    if len(injection) > 32:  # longer than any submission id
        refused(found, 400, "invalid_parameter")
        assert page.status_code == 400
    else:
        assert found.status_code == 200 and found.json["total"] == 0
        assert page.status_code == 200
        assert "0 reviews in this submission." in page.get_data(as_text=True)
    assert client.get("/api/v1/reviews").json["total"] == 1
    assert ledger() == before


@pytest.mark.parametrize("injection", SQL_INJECTIONS)
def test_sql_injection_in_path_segments_is_404(client, sessions, ledger, tiny_model, injection):
    review_id = scored_review(sessions)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    before = ledger()
    for segment in (injection, f"{review_id} OR 1=1", f"{tiny_model}' OR '1'='1"):
        for method, url, headers in [
            ("GET", f"/api/v1/reviews/{segment}", {}),
            ("POST", f"/api/v1/reviews/{segment}/feedback", {}),
            ("GET", f"/api/v1/models/{segment}", {}),
            ("POST", f"/api/v1/models/{segment}/activate", admin),
        ]:
            response = client.open(url, method=method, headers=headers, json={"label": "positive"})
            refused(response, 404, "not_found")
        assert client.get(f"/reviews/{segment}").status_code == 404
        assert client.get(f"/models/{segment}/report/curves.png").status_code == 404
    assert client.get(f"/api/v1/models/{tiny_model}").json["active"] is True
    assert ledger() == before


def test_numbers_past_the_database_integers_are_refused(client, ledger) -> None:
    huge = "9" * 30
    before = ledger()
    refused(client.get(f"/api/v1/reviews/{huge}"), 404, "not_found")
    refused(client.get("/api/v1/reviews/2147483648"), 404, "not_found")
    refused(
        client.post(f"/api/v1/reviews/{huge}/feedback", json={"label": "positive"}),
        404,
        "not_found",
    )
    assert client.get(f"/reviews/{huge}").status_code == 404
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for run in (huge, "2147483648"):
        shadow = client.post(
            f"/api/v1/training-runs/{run}/shadow", json={"decision": "promote"}, headers=admin
        )
        refused(shadow, 404, "not_found")
        form = {"token": ADMIN_TOKEN, "csrf_token": csrf(client)}
        page = client.post(f"/runs/{run}/shadow/reject", data=form, follow_redirects=True)
        assert page.status_code == 200 and f"No retraining run {run}." in page.get_data(True)
    for query in (f"page={huge}", "page=1000001", "per_page=1e2", "page=%D9%A1", "page=1_0"):
        refused(client.get(f"/api/v1/reviews?{query}"), 400, "invalid_parameter")
    assert ledger() == before


# HTML and script injection


def test_html_injection_is_stored_verbatim_and_shown_escaped(client, tiny_model) -> None:
    ids = [submit(client, text) for text in HTML_INJECTIONS]
    assert [stored_text(client, i) for i in ids] == HTML_INJECTIONS
    listed = client.get("/api/v1/reviews", query_string={"per_page": 100}).json["items"]
    assert [item["text"] for item in listed] == HTML_INJECTIONS[::-1]
    history = client.get("/history").get_data(as_text=True)
    for review_id, text in zip(ids, HTML_INJECTIONS, strict=True):
        page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
        for shown in (page, history):
            assert str(escape(text)) in shown
            if text != escape(text):
                assert text not in shown
        assert not re.search(r"<[^<>]*\bhref\s*=\s*[\"']?javascript:", page, re.IGNORECASE)


def test_html_injection_through_the_form_is_stored_verbatim(client, tiny_model) -> None:
    token = csrf(client)
    for text in HTML_INJECTIONS:
        response = client.post("/reviews", data={"text": text, "csrf_token": token})
        assert response.status_code == 303
        review_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert stored_text(client, review_id) == text


def test_a_refused_form_shows_the_text_back_escaped(client, ledger, tiny_model) -> None:
    text = "</textarea><script>alert(1)</script>\x00"
    before = ledger()
    response = client.post("/reviews", data={"text": text, "csrf_token": csrf(client)})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The review contains a character that is not text" in page
    assert "</textarea><script>" not in page and str(escape(text)) in page
    assert ledger() == before


def test_an_injected_submission_filter_is_shown_escaped(client) -> None:
    injection = '"><script>alert(1)</script>'
    page = client.get("/history", query_string={"submission": injection}).get_data(as_text=True)
    assert injection not in page
    assert f'name="submission" value="{escape(injection)}"' in page


# NUL, control and invisible characters


def test_a_nul_in_a_submission_id_is_refused(client, ledger) -> None:
    """PostgreSQL's text holds no NUL, so such an id is refused before any query."""
    before = ledger()
    refused(client.get("/api/v1/reviews?submission=a%00b"), 400, "invalid_parameter")
    refused(client.get("/api/v1/submissions/a%00b/events"), 404, "not_found")
    page = client.get("/history?submission=a%00b")
    assert page.status_code == 400 and "without NUL" in page.get_data(as_text=True)
    assert ledger() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "good\x00film"},
        {"text": "\x00"},
        {"reviews": [{"text": "fine"}, {"text": "good\x00film"}]},
    ],
)
def test_a_nul_in_the_text_is_refused(client, ledger, tiny_model, payload) -> None:
    before = ledger()
    response = client.post("/api/v1/reviews", json=payload)
    code = "empty_text" if payload.get("text") == "\x00" else "invalid_text"
    refused(response, 422, code)
    assert ledger() == before


@pytest.mark.parametrize(
    ("filename", "content"),
    [("reviews.csv", b"text\nfine\ngood\x00film\n"), ("reviews.jsonl", b'{"text": "a\\u0000b"}\n')],
)
def test_a_nul_in_a_form_or_upload_is_refused(client, ledger, tiny_model, filename, content):
    token = csrf(client)
    before = ledger()
    one = client.post("/reviews", data={"text": "good\x00film", "csrf_token": token})
    assert one.status_code == 422
    many = client.post(
        "/reviews/batch",
        data={"csrf_token": token, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )
    assert many.status_code == 422 and "contains a character that is not text" in many.get_data(
        as_text=True
    )
    assert ledger() == before


def test_other_control_characters_are_stored_verbatim(client, tiny_model) -> None:
    text = "tab\there, bell\x07, escape \x1b[31mred\x1b[0m, form feed\x0c, delete\x7f, C1\x85 end"
    review_id = submit(client, text)
    assert stored_text(client, review_id) == text
    assert client.get(f"/reviews/{review_id}").status_code == 200


@pytest.mark.parametrize("text", INVISIBLE_TEXTS)
def test_a_text_with_nothing_visible_is_empty(client, ledger, tiny_model, text) -> None:
    before = ledger()
    refused(client.post("/api/v1/reviews", json={"text": text}), 422, "empty_text")
    batch = client.post("/api/v1/reviews", json={"reviews": [{"text": "fine"}, {"text": text}]})
    refused(batch, 422, "empty_text")
    assert "reviews[1] is empty" in batch.json["error"]["message"]
    page = client.post("/reviews", data={"text": text, "csrf_token": csrf(client)})
    assert page.status_code == 422 and "The review is empty" in page.get_data(as_text=True)
    assert ledger() == before


def test_invisible_characters_inside_visible_text_are_kept(client, tiny_model) -> None:
    text = "zero\u200bwidth, soft\u00adhyphen, joiner\u2060s and a \u202eflipped"
    assert stored_text(client, submit(client, f"  {text}\u3000\n")) == text


# Idempotency-Key edge cases


@pytest.mark.parametrize(
    "headers",
    [
        {"Idempotency-Key": ""},
        {"Idempotency-Key": " "},
        {"Idempotency-Key": "two words"},
        {"Idempotency-Key": "tab\tkey"},
        {"Idempotency-Key": "caf\xe9"},
        {"Idempotency-Key": "bell\x07"},
        [("Idempotency-Key", "first"), ("Idempotency-Key", "second")],
    ],
)
def test_a_malformed_idempotency_key_is_400(client, ledger, tiny_model, headers) -> None:
    before = ledger()
    response = client.post("/api/v1/reviews", json={"text": "fine"}, headers=headers)
    refused(response, 400, "invalid_idempotency_key")
    assert ledger() == before


@pytest.mark.parametrize("key", ["0", "!~", "k" * 128, json.dumps({"a": [1]}).replace(" ", "")])
def test_an_unusual_but_valid_idempotency_key_works(client, sessions, tiny_model, key) -> None:
    first = client.post("/api/v1/reviews", json={"text": "fine"}, headers={"Idempotency-Key": key})
    again = client.post("/api/v1/reviews", json={"text": "fine"}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 1
        assert session.get(IdempotencyKey, key) is not None
