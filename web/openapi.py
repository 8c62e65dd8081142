"""The OpenAPI 3 document, built from the API's routes and their docstrings at app creation."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Flask

from sentiment_core.db import ReviewStatus, Sentiment
from sentiment_core.inputs import (
    INVISIBLE,
    MAX_ID,
    MAX_PAGE,
    MAX_PER_PAGE,
    MAX_SUBMISSION,
    MAX_WAIT_S,
)
from sentiment_core.registry import VERSION_PATTERN
from sentiment_core.schemas import SCHEMAS
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS

TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_REVIEW_CHARS,
    "pattern": f"^[^\\x00]*[^{INVISIBLE}][^\\x00]*$",
    "description": "Something visible, and no NUL; surrounding whitespace is dropped.",
}
# The one request shape marshmallow cannot say: exactly one of two keys.
REVIEW_CREATE = {
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
}


def build_openapi(app: Flask) -> dict:
    """Every route of the `api` and `metrics` blueprints, as its view's docstring describes it."""
    spec = APISpec(
        title="Review sentiment API",
        version="1",
        openapi_version="3.0.3",
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
        info={"description": "Submit movie reviews for scoring, wait for results, give feedback."},
    )
    for name, shape in SCHEMAS.items():
        spec.components.schema(name, schema=shape)
    spec.components.schema("ReviewCreate", REVIEW_CREATE)
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
    wait = {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "default": 0}
    description = "Seconds to wait for the review to be finished (done or failed) before answering"
    spec.components.parameter("wait", "query", {"schema": wait, "description": description})
    path_parameters: dict[str, dict] = {
        "review_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "submission": {"type": "string", "maxLength": MAX_SUBMISSION},
        "version": {"type": "string", "pattern": f"^{VERSION_PATTERN}$", "example": "v1"},
    }
    for name, schema in path_parameters.items():
        spec.components.parameter(name, "path", {"required": True, "schema": schema})
    for name, enum in (("status", ReviewStatus), ("sentiment", Sentiment)):
        values = {"type": "string", "enum": [member.value for member in enum]}
        spec.components.parameter(name, "query", {"schema": values})
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.split(".")[0] in {"api", "metrics"}:
                spec.path(view=app.view_functions[rule.endpoint], app=app)
    return spec.to_dict()
