"""The public shapes, each declared once: a marshmallow schema serialises the API's responses
(and the command line's records) with `dump` and, through apispec's MarshmallowPlugin, is the
OpenAPI component the document refers to (web/openapi.py). Enum values come from the enums."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from marshmallow import Schema, fields, validate

from sentiment_core.db import (
    ExplanationStatus,
    ReviewStatus,
    RunMode,
    RunStatus,
    RunTrigger,
    Sentiment,
    as_utc,
)
from sentiment_core.readiness import READY_TTL_S, REFRESH_EVERY_S


class Moment(fields.DateTime):
    """A stored time as ISO 8601 in UTC (SQLite hands times back without their zone)."""

    def _serialize(
        self, value: datetime | None, attr: str | None, obj: object, **kwargs: object
    ) -> str | None:
        return None if value is None else as_utc(value).isoformat()


def values_of(enum: type[Enum]) -> validate.OneOf:
    """A text field's allowed values: the enum's (apispec documents them as its `enum`)."""
    return validate.OneOf([member.value for member in enum])


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)


class ReviewPublic(Schema):
    id = fields.Integer(required=True)
    text = fields.String(
        required=True, metadata={"description": "As stored: the submitted text, trimmed"}
    )
    status = fields.Enum(ReviewStatus, by_value=True, required=True)
    sentiment = fields.Enum(Sentiment, by_value=True, allow_none=True)
    score = fields.Float(allow_none=True, metadata={"description": "P(positive)"})
    model_version = fields.String(allow_none=True)
    submission = fields.String(allow_none=True)
    created_at = Moment(required=True)
    scored_at = Moment(allow_none=True)
    error = fields.String(allow_none=True)


class ToLabel(ReviewPublic):
    uncertainty = fields.Function(
        lambda review: 1 - 2 * abs(review.score - 0.5),
        required=True,
        metadata={
            "type": "number",
            "description": "1 - 2 |score - 0.5|: 1 where the model is unsure",
        },
    )
    unknown_words = fields.Integer(
        allow_none=True,
        metadata={
            "description": "How many of the review's words the model's vocabulary lacks, those "
            "in letters its tokenizer does not read included"
        },
    )
    unknown_share = fields.Float(
        allow_none=True,
        metadata={"description": "Share of the review's words the model's vocabulary lacks"},
    )
    new_words = fields.Function(
        lambda review: None if review.new_words is None else review.new_words.split(),
        allow_none=True,
        metadata={
            "type": "array",
            "items": {"type": "string"},
            "description": "The review's words that the model's vocabulary lacks and could "
            "learn (as its tokenizer reads them), once each",
        },
    )


class LabelQueue(Schema):
    items = fields.List(
        fields.Nested(ToLabel),
        required=True,
        metadata={"description": "Unlabeled scored reviews, the most informative first"},
    )


class SubmissionPublic(Schema):
    submission = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([ReviewStatus.queued.value]))
    ids = fields.List(fields.Integer(), required=True)
    urls = fields.List(fields.String())
    id = fields.Integer(metadata={"description": 'Only for a single "text".'})
    url = fields.String(metadata={"description": 'Only for a single "text".'})


class ShadowDecision(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["promote", "reject"]))


class FeedbackCreate(Schema):
    label = fields.Enum(Sentiment, by_value=True, required=True)


class FeedbackPublic(Schema):
    id = fields.Integer(required=True)
    review_id = fields.Integer(required=True)
    label = fields.Enum(Sentiment, by_value=True, required=True)


class ExplainedToken(Schema):
    text = fields.String(required=True, metadata={"description": "The review's text[start:end]"})
    start = fields.Integer(required=True, metadata={"description": "Character offset"})
    end = fields.Integer(required=True)
    weight = fields.Float(
        required=True,
        metadata={"description": "Log-odds this word adds; positive pushes toward positive"},
    )


class RunningScore(Schema):
    end = fields.Integer(required=True, metadata={"description": "Where a sentence ends"})
    score = fields.Float(required=True, metadata={"description": "P(positive) of the text so far"})


class ExplanationPublic(Schema):
    review_id = fields.Integer(required=True)
    model_version = fields.String(required=True)
    method = fields.String(
        allow_none=True, metadata={"description": "integrated-gradients or occlusion"}
    )
    status = fields.Enum(ExplanationStatus, by_value=True, required=True)
    score = fields.Float(allow_none=True, metadata={"description": "P(positive) by this version"})
    tokens = fields.Function(
        lambda row: ExplainedToken(many=True).dump(row.tokens or []),
        required=True,
        metadata={"type": "array", "items": {"$ref": "#/components/schemas/ExplainedToken"}},
    )
    running_scores = fields.Function(
        lambda row: RunningScore(many=True).dump(row.running_scores or []),
        required=True,
        metadata={"type": "array", "items": {"$ref": "#/components/schemas/RunningScore"}},
    )
    error = fields.String(allow_none=True)
    created_at = Moment(required=True)
    updated_at = Moment(required=True)


class ExplanationQueued(Schema):
    status = fields.String(required=True, validate=values_of(ExplanationStatus))
    url = fields.String(required=True)


class ModelPublic(Schema):
    version = fields.String(required=True)
    preset = fields.String(required=True)
    active = fields.Boolean(required=True)
    metrics = fields.Function(
        lambda row: {k: v for k, v in row.metrics.items() if k != "history"},
        required=True,
        metadata={"type": "object"},
    )
    artifact_sha256 = fields.String()
    data_fingerprint = fields.String(allow_none=True)
    parent_version = fields.String(allow_none=True)
    created_at = Moment()
    activated_at = Moment(allow_none=True)


class ModelDetail(ModelPublic):
    history = fields.Function(
        lambda row: row.metrics.get("history"), metadata={"type": "object", "nullable": True}
    )


class RunPublic(Schema):
    id = fields.Integer(required=True)
    trigger = fields.String(required=True, validate=values_of(RunTrigger))  # stored as text
    reason = fields.String(required=True)
    status = fields.Enum(RunStatus, by_value=True, required=True)
    base_version = fields.String(allow_none=True)
    candidate_version = fields.String(allow_none=True)
    mode = fields.String(allow_none=True, validate=values_of(RunMode))
    mode_reason = fields.String(allow_none=True)
    counts = fields.Dict()
    metrics = fields.Dict()
    decision = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    started_at = Moment(required=True)
    finished_at = Moment(allow_none=True)


def page_of(item: type[Schema]) -> type[Schema]:
    """The schema of one page of `item`s, as every list answers."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(required=True),
            "pages": fields.Integer(required=True),
        },
        name=item.__name__.replace("Public", "Page"),
    )


ReviewPage, ModelPage, RunPage = page_of(ReviewPublic), page_of(ModelPublic), page_of(RunPublic)


class Latency(Schema):
    mean = fields.Float(allow_none=True)
    p50 = fields.Float(allow_none=True)
    p95 = fields.Float(allow_none=True)


class BacklogStats(Schema):
    reviews = fields.Integer(required=True, metadata={"description": "Queued or scoring"})
    seconds = fields.Float(
        allow_none=True,
        metadata={"description": "The reviews' scoring time at the window's rate; null: no rate"},
    )
    limit = fields.Integer(required=True, metadata={"description": "MAX_BACKLOG; 0: no limit"})
    refused = fields.Integer(
        required=True,
        metadata={"description": "Submissions this machine's web refused: the backlog was full"},
    )


class FeedbackCounts(Schema):
    total = fields.Integer(required=True)
    right = fields.Integer(required=True)
    wrong = fields.Integer(required=True)


class ActiveModelStats(Schema):
    version = fields.String(allow_none=True)
    feedback_labels = fields.Integer(required=True)
    feedback_accuracy = fields.Float(allow_none=True)


class Stats(Schema):
    queue_depth = fields.Integer(required=True, allow_none=True)
    reviews = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    window_minutes = fields.Integer()
    scored_per_minute = fields.Float()
    average_batch_size = fields.Float(allow_none=True)
    latency_seconds = fields.Nested(Latency)
    backlog = fields.Nested(BacklogStats, required=True)
    feedback = fields.Nested(FeedbackCounts, required=True)
    active_model = fields.Nested(ActiveModelStats)


class ReadinessChecks(Schema):
    database = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    broker = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    model = fields.String(
        required=True,
        metadata={
            "description": 'The active version; "none active", or "unknown" when the database '
            "is unavailable"
        },
    )
    workers = fields.Integer(
        required=True,
        metadata={
            "description": "Scoring worker processes holding the active version with its shapes "
            f"compiled (each refreshes its record every {REFRESH_EVERY_S} s; one that stops "
            f"drops out within {READY_TTL_S} s). Ready needs one."
        },
    )


class Readiness(Schema):
    ready = fields.Boolean(
        required=True, metadata={"description": "Every check passed: a review is scored now"}
    )
    checks = fields.Nested(ReadinessChecks, required=True)


# Every component by the name the views' docstrings refer to it by.
SCHEMAS: dict[str, type[Schema]] = {
    schema.__name__: schema
    for schema in (
        Error, ReviewPublic, ReviewPage, ToLabel, LabelQueue, SubmissionPublic, FeedbackCreate,
        FeedbackPublic,
        ExplainedToken, RunningScore, ExplanationPublic, ExplanationQueued, ModelPublic,
        ModelDetail, ModelPage, RunPublic, RunPage, ShadowDecision, Stats, Readiness,
    )
}  # fmt: skip
