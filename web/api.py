"""JSON API, version 1."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy import text

from core.db import Feedback, ModelVersion, Review, ReviewStatus, Sentiment, as_utc
from core.registry import active_version, list_versions
from core.settings import MAX_BATCH_REVIEWS
from web.reviews import Rejected, clean_text, get_review, sessions, submit_reviews

api = Blueprint("api", __name__)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def review_public(review: Review) -> dict:
    return {
        "id": review.id,
        "status": review.status.value,
        "sentiment": review.sentiment.value if review.sentiment else None,
        "score": review.score,
        "model_version": review.model_version,
        "created_at": iso(review.created_at),
        "scored_at": iso(review.scored_at),
        "error": review.error,
    }


def model_public(row: ModelVersion) -> dict:
    return {
        "version": row.version,
        "preset": row.preset,
        "active": row.active,
        "metrics": {k: v for k, v in row.metrics.items() if k != "history"},
        "artifact_sha256": row.artifact_sha256,
        "parent_version": row.parent_version,
        "created_at": iso(row.created_at),
        "activated_at": iso(row.activated_at),
    }


def error(status: int, code: str, message: str):  # type: ignore[no-untyped-def]
    return jsonify(error={"code": code, "message": message}), status


@api.errorhandler(Rejected)
def rejected(exc: Rejected):  # type: ignore[no-untyped-def]
    return error(exc.status, exc.code, exc.message)


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Rejected(400, "invalid_json", "the body must be a JSON object")
    return body


@api.post("/api/v1/reviews")
def create_reviews():  # type: ignore[no-untyped-def]
    body = json_body()
    if ("text" in body) == ("reviews" in body):
        raise Rejected(400, "invalid_body", 'give either "text" or "reviews"')
    if "text" in body:
        (review_id,) = submit_reviews([clean_text(body["text"])])
        url = url_for("api.show_review", review_id=review_id)
        return jsonify(id=review_id, status=ReviewStatus.queued.value, url=url), 202
    items = body["reviews"]
    if not isinstance(items, list) or not items:
        raise Rejected(400, "invalid_type", '"reviews" must be a non-empty list')
    if len(items) > MAX_BATCH_REVIEWS:
        raise Rejected(413, "too_many_reviews", f"at most {MAX_BATCH_REVIEWS} reviews at once")
    texts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise Rejected(400, "invalid_type", f"reviews[{i}] must be an object with a text")
        texts.append(clean_text(item.get("text"), where=f"reviews[{i}].text"))
    return jsonify(ids=submit_reviews(texts)), 202


@api.get("/api/v1/reviews/<int:review_id>")
def show_review(review_id: int):  # type: ignore[no-untyped-def]
    review = get_review(review_id)
    if review is None:
        return error(404, "not_found", f"no review {review_id}")
    return jsonify(review_public(review))


@api.post("/api/v1/reviews/<int:review_id>/feedback")
def create_feedback(review_id: int):  # type: ignore[no-untyped-def]
    label = json_body().get("label")
    if label not in {s.value for s in Sentiment}:
        raise Rejected(422, "invalid_label", 'label must be "positive" or "negative"')
    with sessions() as session:
        review = session.get(Review, review_id)
        if review is None:
            return error(404, "not_found", f"no review {review_id}")
        if review.status is not ReviewStatus.done:
            raise Rejected(409, "not_scored", "feedback is taken once the review is scored")
        feedback = Feedback(review_id=review_id, label=Sentiment(label))
        session.add(feedback)
        session.commit()
        return jsonify(id=feedback.id, review_id=review_id, label=label), 201


@api.get("/api/v1/models")
def models():  # type: ignore[no-untyped-def]
    with sessions() as session:
        return jsonify(models=[model_public(row) for row in list_versions(session)])


@api.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@api.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    checks = {"database": "unavailable", "broker": "unavailable", "model": "unknown"}
    ready = True
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
            row = active_version(session)
        checks["database"] = "ok"
        checks["model"] = row.version if row else "none active"
        ready = row is not None
    except Exception:
        ready = False
    try:
        current_app.extensions["redis"].ping()
        checks["broker"] = "ok"
    except Exception:
        ready = False
    return jsonify(ready=ready, checks=checks), 200 if ready else 503
