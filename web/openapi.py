"""The OpenAPI 3 document, built from the API's routes and their docstrings at app creation."""

from __future__ import annotations

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Flask

from sentiment_core.registry import VERSION_PATTERN
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS
from web.reviews import INVISIBLE, MAX_ID, MAX_PAGE, MAX_PER_PAGE

NULLABLE_STRING = {"type": "string", "nullable": True}
TIME = {"type": "string", "format": "date-time"}
TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_REVIEW_CHARS,
    "pattern": f"^[^\\x00]*[^{INVISIBLE}][^\\x00]*$",
    "description": "Something visible, and no NUL; surrounding whitespace is dropped.",
}


def page_of(item: str) -> dict:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    }


SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "ReviewCreate": {
        "type": "object",
        "description": 'Exactly one of "text" and "reviews".',
        "properties": {
            "text": TEXT,
            "reviews": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH_REVIEWS,
                "items": {"type": "object", "required": ["text"], "properties": {"text": TEXT}},
            },
        },
        "oneOf": [{"required": ["text"]}, {"required": ["reviews"]}],
    },
    "SubmissionPublic": {
        "type": "object",
        "required": ["submission", "status", "ids"],
        "properties": {
            "submission": {"type": "string"},
            "status": {"type": "string", "enum": ["queued"]},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "urls": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "integer", "description": 'Only for a single "text".'},
            "url": {"type": "string", "description": 'Only for a single "text".'},
        },
    },
    "ReviewPublic": {
        "type": "object",
        "required": ["id", "text", "status", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "text": {"type": "string", "description": "As stored: the submitted text, trimmed"},
            "status": {"type": "string", "enum": ["queued", "scoring", "done", "failed"]},
            "sentiment": {"type": "string", "enum": ["positive", "negative"], "nullable": True},
            "score": {"type": "number", "nullable": True, "description": "P(positive)"},
            "model_version": NULLABLE_STRING,
            "submission": NULLABLE_STRING,
            "created_at": TIME,
            "scored_at": TIME | {"nullable": True},
            "error": NULLABLE_STRING,
        },
    },
    "ReviewPage": page_of("ReviewPublic"),
    "FeedbackCreate": {
        "type": "object",
        "required": ["label"],
        "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}},
    },
    "FeedbackPublic": {
        "type": "object",
        "required": ["id", "review_id", "label"],
        "properties": {
            "id": {"type": "integer"},
            "review_id": {"type": "integer"},
            "label": {"type": "string", "enum": ["positive", "negative"]},
        },
    },
    "ModelPublic": {
        "type": "object",
        "required": ["version", "preset", "active", "metrics"],
        "properties": {
            "version": {"type": "string"},
            "preset": {"type": "string"},
            "active": {"type": "boolean"},
            "metrics": {"type": "object"},
            "artifact_sha256": {"type": "string"},
            "data_fingerprint": NULLABLE_STRING,
            "parent_version": NULLABLE_STRING,
            "created_at": TIME,
            "activated_at": TIME | {"nullable": True},
            "history": {"type": "object", "nullable": True},
        },
    },
    "ModelPage": page_of("ModelPublic"),
    "RunPublic": {
        "type": "object",
        "required": ["id", "trigger", "reason", "status", "started_at"],
        "properties": {
            "id": {"type": "integer"},
            "trigger": {"type": "string", "enum": ["schedule", "admin"]},
            "reason": {"type": "string"},
            "status": {"type": "string", "enum": ["running", "promoted", "rejected", "failed"]},
            "base_version": NULLABLE_STRING,
            "candidate_version": NULLABLE_STRING,
            "mode": {"type": "string", "enum": ["fine-tune", "scratch"], "nullable": True},
            "mode_reason": NULLABLE_STRING,
            "counts": {"type": "object"},
            "metrics": {"type": "object"},
            "decision": NULLABLE_STRING,
            "error": NULLABLE_STRING,
            "started_at": TIME,
            "finished_at": TIME | {"nullable": True},
        },
    },
    "RunPage": page_of("RunPublic"),
    "Stats": {"type": "object", "required": ["queue_depth", "reviews", "feedback"]},
    "Readiness": {
        "type": "object",
        "required": ["ready", "checks"],
        "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}},
    },
}


def build_openapi(app: Flask) -> dict:
    """Every route of the `api` and `metrics` blueprints, as its view's docstring describes it."""
    spec = APISpec(
        title="Review sentiment API",
        version="1",
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={"description": "Submit movie reviews for scoring, poll results, give feedback."},
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    spec.components.response(
        "Error",
        {
            "description": "The request was refused; the body says why",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    )
    for name, default, maximum in (("page", 1, MAX_PAGE), ("per_page", 20, MAX_PER_PAGE)):
        schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
        spec.components.parameter(name, "query", {"schema": schema})
    path_parameters: dict[str, dict] = {
        "review_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "version": {"type": "string", "pattern": f"^{VERSION_PATTERN}$", "example": "v1"},
    }
    for name, schema in path_parameters.items():
        spec.components.parameter(name, "path", {"required": True, "schema": schema})
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.split(".")[0] in {"api", "metrics"}:
                spec.path(view=app.view_functions[rule.endpoint], app=app)
    return spec.to_dict()
