"""Every documented response shape against real responses with every field filled: a scored
review, a submission, feedback, model versions and a finished retraining run. The shapes are
declared once (sentiment_core/schemas.py); this checks that what the API sends is what its
document says, field by field, as schemathesis validates a response."""

from dataclasses import replace

import pytest
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from sentiment_core.backlog import RATE_WINDOW_S
from sentiment_core.db import (
    Explanation,
    ExplanationStatus,
    Review,
    ReviewStatus,
    RunStatus,
    Sentiment,
    TrainingRun,
    utcnow,
)
from sentiment_core.gate import Difference
from sentiment_core.registry import active_version
from tests.conftest import ADMIN_TOKEN, add_model
from tests.web.test_fuzz import schema

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FINISHED_SUBMISSION = "d" * 32


@pytest.fixture
def filled_app(fuzz_app, settings, sessions, tiny_artifact):
    """The fuzz's app (a scoring worker ready with its model), with a second model version and
    a retraining run that promoted it."""
    second = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        session.add(
            TrainingRun(
                trigger="admin",
                reason="requested",
                status=RunStatus.promoted,
                base_version="v1",
                candidate_version=second,
                mode="fine-tune",
                mode_reason="the vocabulary covers the feedback",
                counts={"labeled_reviews": 3},
                metrics={
                    "feedback": Difference.from_counts(20, 9, 1, 0.9).as_dict(),
                    "imdb": Difference.from_counts(50, 0, 0, 0.9).as_dict(),
                    "labels_needed": None,
                },
                decision="promoted",
                finished_at=utcnow(),
            )
        )
        session.commit()
        scored = session.query(Review).filter_by(status=ReviewStatus.done).one().id
        # A submission whose reviews are all finished, so its event stream ends.
        session.query(Review).filter(
            Review.status.in_([ReviewStatus.done, ReviewStatus.failed])
        ).update({"submission": FINISHED_SUBMISSION})
        session.add(
            Explanation(
                review_id=scored,
                model_version=active_version(session).version,
                status=ExplanationStatus.done,
                method="integrated-gradients",
                score=0.9,
                tokens=[{"text": "scored", "start": 0, "end": 6, "weight": 0.4}],
                running_scores=[{"end": 6, "score": 0.9}],
            )
        )
        session.commit()
    return fuzz_app, scored, second


def test_real_responses_match_their_documented_shapes(filled_app) -> None:
    app, scored, second = filled_app
    calls = [
        ("/api/v1/reviews", "POST", {}, {"text": "A fine film."}, {}, 202),
        ("/api/v1/reviews", "POST", {}, {"reviews": [{"text": "Dull."}, {"text": "Ok."}]}, {}, 202),
        ("/api/v1/reviews", "GET", {}, None, {}, 200),
        ("/api/v1/reviews/{review_id}", "GET", {"review_id": scored}, None, {}, 200),
        ("/api/v1/reviews/{review_id}", "GET", {"review_id": 99999}, None, {}, 404),
        ("/api/v1/reviews/{review_id}", "GET", {"review_id": scored}, None, {}, 200, {"wait": 5}),
        ("/api/v1/reviews/{review_id}", "GET", {"review_id": scored}, None, {}, 400, {"wait": 31}),
        ("/api/v1/submissions/{submission}/events", "GET", {"submission": FINISHED_SUBMISSION},
         None, {}, 200),
        ("/api/v1/submissions/{submission}/events", "GET", {"submission": "0" * 32}, None, {}, 404),
        ("/api/v1/reviews/{review_id}/feedback", "POST", {"review_id": scored},
         {"label": Sentiment.positive.value}, {}, 201),
        ("/api/v1/reviews/{review_id}/explanation", "POST", {"review_id": scored}, None, {}, 200),
        ("/api/v1/reviews/{review_id}/explanation", "GET", {"review_id": scored}, None, {}, 200),
        ("/api/v1/reviews/{review_id}/explanation", "GET", {"review_id": 99999}, None, {}, 404),
        ("/api/v1/models", "GET", {}, None, {}, 200),
        ("/api/v1/models/{version}", "GET", {"version": second}, None, {}, 200),
        ("/api/v1/models/{version}/activate", "POST", {"version": second}, None, ADMIN, 200),
        ("/api/v1/reviews/{review_id}/explanation", "POST", {"review_id": scored}, None, {}, 202),
        ("/api/v1/models/rollback", "POST", {}, None, ADMIN, 200),
        ("/api/v1/models/rollback", "POST", {}, None, {}, 401),
        ("/api/v1/training-runs", "GET", {}, None, {}, 200),
        ("/api/v1/stats", "GET", {}, None, {}, 200),
        ("/readyz", "GET", {}, None, {}, 200),
        ("/healthz", "GET", {}, None, {}, 200),
    ]  # fmt: skip
    for path, method, parameters, body, headers, status, *query in calls:
        case = schema[path][method].Case(
            path_parameters=parameters,
            headers=headers,
            query=query[0] if query else None,
            **({} if body is None else {"body": body}),
        )
        response = case.call(app=app)
        assert response.status_code == status, (path, method, response.text)
        case.validate_response(
            response,
            excluded_checks=[positive_data_acceptance],  # refusals here are on purpose
            transport_kwargs={"app": app},
        )
    run = schema["/api/v1/training-runs"]["GET"].Case().call(app=app).json()["items"][0]
    # Every field of the run was checked with a value, but the error a promoted run has not.
    assert [name for name, value in run.items() if value is None] == ["error"]


def test_a_submission_shed_for_a_full_backlog_answers_as_documented(
    settings, make_app, tiny_model, sessions
) -> None:
    app = make_app(replace(settings, max_backlog=1))
    with sessions() as session:
        session.add(Review(text="waiting", status=ReviewStatus.queued))
        session.commit()
    case = schema["/api/v1/reviews"]["POST"].Case(body={"text": "A fine film."})
    response = case.call(app=app)
    assert response.status_code == 503
    assert response.headers["retry-after"] == [str(RATE_WINDOW_S)]  # nothing scored lately
    case.validate_response(
        response,
        excluded_checks=[positive_data_acceptance, not_a_server_error],  # a 503 on purpose
        transport_kwargs={"app": app},
    )
    documented = schema.raw_schema["paths"]["/api/v1/reviews"]["post"]["responses"]["503"]
    assert documented["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
