"""JSON API, version 1: reads the request, calls the operations (sentiment_core/operations.py)
and shapes the response; web/app.py answers their refusals. Each view's docstring carries its
OpenAPI operation (web/openapi.py)."""

from __future__ import annotations

import json
from contextlib import suppress
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import select, text

from sentiment_core.db import (
    ExplanationStatus,
    ModelVersion,
    ReviewStatus,
    Sentiment,
    TrainingRun,
)
from sentiment_core.errors import Invalid, NotFound, Unacceptable
from sentiment_core.finished import submission_statuses
from sentiment_core.inputs import (
    check_idempotency_key,
    clean_text,
    clean_texts,
    parse_choice,
    parse_page,
    parse_submission,
    parse_wait,
    storable_submission,
)
from sentiment_core.labeling import label_queue
from sentiment_core.operations import (
    activate_model,
    end_shadow,
    find_explanation,
    list_reviews,
    paginate,
    record_feedback,
    request_explanation,
    rollback_model,
    start_retraining,
    submit_reviews,
)
from sentiment_core.readiness import count_ready
from sentiment_core.registry import active_version, get_version
from sentiment_core.schemas import (
    ExplanationPublic,
    ExplanationQueued,
    FeedbackPublic,
    LabelQueue,
    ModelDetail,
    ModelPage,
    ModelPublic,
    Readiness,
    ReviewPage,
    ReviewPublic,
    RunPage,
    RunPublic,
    SubmissionPublic,
)
from sentiment_core.schemas import Stats as StatsSchema
from web.admin import bearer_token, check_admin
from web.errors import Forbidden
from web.limits import client_id, explain_limit, feedback_limit, submit_limit
from web.services import get_services
from web.stats import collect_stats
from web.waiting import submission_events, wait_for_review

api = Blueprint("api", __name__)
# Built once: building a schema costs more than the dump of a review it does.
REVIEW = ReviewPublic()
SUBMISSION = SubmissionPublic()


def json_body() -> dict:
    """The request's JSON object, or Invalid saying what is wrong with the body."""
    if not request.is_json:
        raise Invalid("invalid_json", "the body must be a JSON object (application/json)")
    try:
        body = json.loads(request.get_data().decode())
    except UnicodeDecodeError:
        raise Invalid("invalid_encoding", "the body is not UTF-8 text") from None
    except RecursionError:
        raise Invalid("invalid_json", "the body's JSON is nested too deeply") from None
    except ValueError:
        raise Invalid("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "the body must be a JSON object")
    return body


def require_admin() -> None:
    check_admin(bearer_token(request.headers.get("Authorization")))


def newest_first(model, schema):
    """One page of `model`'s rows, newest first, as the request's page and per_page ask."""
    page, per_page = parse_page(request.args.get("page"), request.args.get("per_page"))
    query = select(model).order_by(model.id.desc())
    found = paginate(sessions=get_services().sessions, query=query, page=page, per_page=per_page)
    return jsonify(schema.dump(found))


@api.before_request
def refuse_cross_site_writes() -> None:
    """A write that a browser says another site's page sent is refused: by Sec-Fetch-Site, or
    where a browser sends none (plain HTTP to a host other than localhost), by an Origin that
    names another host. A JSON body already needs the page's own script, but an explanation
    request has no body: any site could have its visitors queue explanations. Programs send
    neither header."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site not in (None, "same-origin", "none") or (
        site is None and origin is not None and urlsplit(origin).netloc != request.host
    ):
        raise Forbidden("cross_site", "the API takes no writes from another site's pages")


@api.post("/api/v1/reviews")
@submit_limit
def create_reviews():
    """
    ---
    post:
      summary: Submit one review (text) or up to 1,000 (reviews) for scoring
      parameters:
        - in: header
          name: Idempotency-Key
          schema: {type: string, minLength: 1, maxLength: 128, pattern: "^[!-~]+$"}
          description: A retried request with the same key and body returns the same reviews.
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/ReviewCreate"}
      responses:
        "202":
          description: Stored and queued
          content:
            application/json:
              schema: {$ref: "#/components/schemas/SubmissionPublic"}
        "400": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "413": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
        "429": {$ref: "#/components/responses/Error"}
        "503":
          description: >-
            Not now: no active model, the queue or database down, or (code overloaded) the
            backlog too full to take these reviews; nothing was stored
          headers:
            Retry-After:
              description: When the backlog was full, the seconds its workers need to make room
              schema: {type: integer, minimum: 1}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Error"}
    """
    key = check_idempotency_key(request.headers.get("Idempotency-Key"))
    payload = json_body()
    if ("text" in payload) == ("reviews" in payload):
        raise Invalid("invalid_body", 'give either "text" or "reviews"')
    if "text" in payload:
        texts = [clean_text(payload["text"])]
    else:
        items = payload["reviews"]
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise Invalid("invalid_type", '"reviews" must be a list of {"text": ...}')
        texts = clean_texts([item.get("text") for item in items])
    services = get_services()
    submission = submit_reviews(
        sessions=services.sessions,
        celery=services.celery,
        backlog=services.backlog,
        texts=texts,
        idempotency_key=key,
    )
    ids = submission.review_ids
    urls = [url_for("api.show_review", review_id=i) for i in ids]
    body = {"submission": submission.id, "status": ReviewStatus.queued.value, "ids": ids}
    body |= {"id": ids[0], "url": urls[0]} if "text" in payload else {"urls": urls}
    response = jsonify(SUBMISSION.dump(body))
    response.status_code = 202
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get("/api/v1/reviews")
def index_reviews():
    """
    ---
    get:
      summary: Reviews, newest first, filtered and paginated
      parameters:
        - status
        - sentiment
        - {in: query, name: submission, schema: {type: string, maxLength: 32}}
        - page
        - per_page
      responses:
        "200":
          description: One page of reviews
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReviewPage"}
        "400": {$ref: "#/components/responses/Error"}
    """
    args = request.args
    page, per_page = parse_page(args.get("page"), args.get("per_page"))
    found = list_reviews(
        sessions=get_services().sessions,
        page=page,
        per_page=per_page,
        status=parse_choice(args.get("status"), ReviewStatus, "status"),
        sentiment=parse_choice(args.get("sentiment"), Sentiment, "sentiment"),
        submission=parse_submission(args.get("submission")),
    )
    return jsonify(ReviewPage().dump(found))


@api.get("/api/v1/label-queue")
def show_label_queue():
    """
    ---
    get:
      summary: The scored reviews nobody has labeled yet whose label would teach the model most
        (a score near 0.5, new words that recur in other reviews), for labeling one after another;
        a label is ordinary feedback (POST /api/v1/reviews/{review_id}/feedback)
      parameters:
        - page
        - per_page
      responses:
        "200":
          description: The most informative reviews first
          content:
            application/json:
              schema: {$ref: "#/components/schemas/LabelQueue"}
        "400": {$ref: "#/components/responses/Error"}
    """
    page, limit = parse_page(request.args.get("page"), request.args.get("per_page"))
    services = get_services()
    items = label_queue(
        sessions=services.sessions,
        limit=limit,
        holdout=services.settings.feedback_holdout,
        offset=(page - 1) * limit,
    )
    return jsonify(LabelQueue().dump({"items": items}))


@api.get("/api/v1/reviews/<int:review_id>")
def show_review(review_id: int):
    """
    ---
    get:
      summary: One review and, once scored, its sentiment
      parameters:
        - review_id
        - wait
      responses:
        "200":
          description: The review
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReviewPublic"}
        "400": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
    """
    wait_s = parse_wait(request.args.get("wait"))
    services = get_services()
    review = wait_for_review(services.announcements, services.sessions, review_id, wait_s)
    if review is None:
        raise NotFound("not_found", f"no review {review_id}")
    return jsonify(REVIEW.dump(review))


@api.get("/api/v1/submissions/<submission>/events")
def stream_submission(submission: str):
    """
    ---
    get:
      summary: Server-sent events of a submission's reviews as each is finished (done or
        failed), those finished already first; the stream ends after the last, or after two
        minutes with reviews still to come (open it again for the rest)
      parameters:
        - submission
      responses:
        "200":
          description: One event per review; comment lines keep a quiet stream open
          content:
            text/event-stream:
              schema:
                type: object
                required: [data]
                properties:
                  data:
                    type: string
                    description: The review as JSON, as GET /api/v1/reviews/{review_id}
                      answers it (ReviewPublic)
                  event: {type: string, enum: [message]}
        "404": {$ref: "#/components/responses/Error"}
    """
    services = get_services()
    if not storable_submission(submission) or not submission_statuses(
        sessions=services.sessions, submission=submission
    ):
        raise NotFound("not_found", f"no submission {submission}")
    events = submission_events(services.announcements, services.sessions, submission)
    # No caching, and no buffering by a proxy such as nginx: each event goes out when it is made.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(events, mimetype="text/event-stream", headers=headers)


@api.post("/api/v1/reviews/<int:review_id>/feedback")
@feedback_limit
def create_feedback(review_id: int):
    """
    ---
    post:
      summary: Label a scored review; a client's newer label replaces its earlier one
      parameters:
        - review_id
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/FeedbackCreate"}
      responses:
        "201":
          description: Recorded
          content:
            application/json:
              schema: {$ref: "#/components/schemas/FeedbackPublic"}
        "200":
          description: Replaced this client's earlier label
          content:
            application/json:
              schema: {$ref: "#/components/schemas/FeedbackPublic"}
        "400": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
        "429": {$ref: "#/components/responses/Error"}
    """
    label = json_body().get("label")
    if not isinstance(label, str) or label not in {s.value for s in Sentiment}:
        raise Unacceptable("invalid_label", 'label must be "positive" or "negative"')
    feedback, created = record_feedback(
        sessions=get_services().sessions,
        review_id=review_id,
        label=Sentiment(label),
        client=client_id(),
    )
    return jsonify(FeedbackPublic().dump(feedback)), 201 if created else 200


@api.post("/api/v1/reviews/<int:review_id>/explanation")
@explain_limit
def create_explanation(review_id: int):
    """
    ---
    post:
      summary: Ask why the active model scores a review as it does; a worker computes it
      parameters:
        - review_id
      responses:
        "200":
          description: Already explained by the active model
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ExplanationPublic"}
        "202":
          description: Queued; poll the url
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ExplanationQueued"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "429": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
    """
    services = get_services()
    explanation, _ = request_explanation(
        sessions=services.sessions, celery=services.celery, review_id=review_id
    )
    if explanation.status is ExplanationStatus.done:
        return jsonify(ExplanationPublic().dump(explanation))
    url = url_for("api.show_explanation", review_id=review_id)
    body = ExplanationQueued().dump({"status": ExplanationStatus.queued.value, "url": url})
    return jsonify(body), 202, {"Location": url}


@api.get("/api/v1/reviews/<int:review_id>/explanation")
def show_explanation(review_id: int):
    """
    ---
    get:
      summary: The review's explanation by the active model, else the latest requested
      parameters:
        - review_id
      responses:
        "200":
          description: The explanation
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ExplanationPublic"}
        "404": {$ref: "#/components/responses/Error"}
    """
    explanation = find_explanation(sessions=get_services().sessions, review_id=review_id)
    return jsonify(ExplanationPublic().dump(explanation))


@api.get("/api/v1/models")
def index_models():
    """
    ---
    get:
      summary: Model versions, newest first
      parameters:
        - page
        - per_page
      responses:
        "200":
          description: One page of model versions
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ModelPage"}
        "400": {$ref: "#/components/responses/Error"}
    """
    return newest_first(ModelVersion, ModelPage())


@api.get("/api/v1/models/<version:version>")
def show_model(version: str):
    """
    ---
    get:
      summary: One model version with its metrics and training history
      parameters:
        - version
      responses:
        "200":
          description: The model version
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ModelDetail"}
        "404": {$ref: "#/components/responses/Error"}
    """
    with get_services().sessions() as session:
        row = get_version(session, version)
    if row is None:
        raise NotFound("not_found", f"no model version {version}")
    return jsonify(ModelDetail().dump(row))


@api.post("/api/v1/models/<version:version>/activate")
def activate(version: str):
    """
    ---
    post:
      summary: Make this version the one workers score with (admin)
      security: [{admin: []}]
      parameters:
        - version
      responses:
        "200":
          description: Now active
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ModelPublic"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
    """
    require_admin()
    row = activate_model(sessions=get_services().sessions, version=version)
    return jsonify(ModelPublic().dump(row))


@api.post("/api/v1/models/rollback")
def rollback():
    """
    ---
    post:
      summary: Make the previously active version active again (admin)
      security: [{admin: []}]
      responses:
        "200":
          description: Now active
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ModelPublic"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
    """
    require_admin()
    return jsonify(ModelPublic().dump(rollback_model(sessions=get_services().sessions)))


@api.post("/api/v1/training-runs/<int:run_id>/shadow")
def decide_shadow(run_id: int):
    """
    ---
    post:
      summary: End a run's shadow period early (admin) - promote its candidate, or reject it
      security: [{admin: []}]
      parameters:
        - {in: path, name: run_id, required: true, schema: {type: integer, minimum: 1}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/ShadowDecision"}
      responses:
        "200":
          description: The run, decided
          content:
            application/json:
              schema: {$ref: "#/components/schemas/RunPublic"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
    """
    require_admin()
    decision = json_body().get("decision")
    if decision not in ("promote", "reject"):
        raise Unacceptable("invalid_decision", 'decision must be "promote" or "reject"')
    run = end_shadow(sessions=get_services().sessions, run_id=run_id, promote=decision == "promote")
    return jsonify(RunPublic().dump(run))


@api.post("/api/v1/retrain")
def retrain():
    """
    ---
    post:
      summary: Start a retraining run on the feedback so far (admin)
      security: [{admin: []}]
      responses:
        "202":
          description: Queued for the trainer
          content:
            application/json:
              schema: {type: object, properties: {status: {type: string, enum: [queued]}}}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "503": {$ref: "#/components/responses/Error"}
    """
    require_admin()
    services = get_services()
    start_retraining(sessions=services.sessions, celery=services.celery, redis=services.redis)
    return jsonify(status="queued"), 202


@api.get("/api/v1/training-runs")
def training_runs():
    """
    ---
    get:
      summary: Retraining runs, newest first, with their data counts, the decision, and its
        evidence in metrics (the candidate's accuracy minus the active model's on held-out
        feedback and on held-out IMDb reviews, each with its interval and number of reviews,
        and the labels a waiting run needs)
      parameters:
        - page
        - per_page
      responses:
        "200":
          description: One page of runs
          content:
            application/json:
              schema: {$ref: "#/components/schemas/RunPage"}
        "400": {$ref: "#/components/responses/Error"}
    """
    return newest_first(TrainingRun, RunPage())


@api.get("/api/v1/stats")
def stats():
    """
    ---
    get:
      summary: Queue depth, throughput, batch size, latency and feedback, as on the dashboard
      responses:
        "200":
          description: The figures
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Stats"}
    """
    return jsonify(StatsSchema().dump(collect_stats()))


@api.get("/api/v1/openapi.json")
def openapi():
    """
    ---
    get:
      summary: This document
      responses:
        "200":
          description: OpenAPI 3 document
          content:
            application/json:
              schema: {type: object}
    """
    return jsonify(get_services().openapi)


@api.get("/healthz")
def healthz():
    """
    ---
    get:
      summary: The web process is up
      responses:
        "200":
          description: Alive
          content:
            application/json:
              schema: {type: object, properties: {status: {type: string}}}
    """
    return jsonify(status="ok")


@api.get("/readyz")
def readyz():
    """
    ---
    get:
      summary: Database, broker, an active model, and a scoring worker that holds it warm
      responses:
        "200":
          description: Ready
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Readiness"}
        "503":
          description: Not ready; checks says what is missing
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Readiness"}
    """
    checks = {"database": "unavailable", "broker": "unavailable", "model": "unknown"}
    row = None
    workers = 0  # scoring processes ready with the active version
    with suppress(Exception):
        with get_services().sessions() as session:
            session.execute(text("SELECT 1"))
            row = active_version(session)
        checks["database"] = "ok"
        checks["model"] = row.version if row else "none active"
    with suppress(Exception):
        redis = get_services().redis
        redis.ping()
        checks["broker"] = "ok"
        if row is not None:
            workers = count_ready(redis, version=row.version)
    ready = workers > 0  # a ready worker needs the database, the broker and an active model
    body = {"ready": ready, "checks": checks | {"workers": workers}}
    return jsonify(Readiness().dump(body)), 200 if ready else 503
