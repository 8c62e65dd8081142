"""Flask application factory."""

from __future__ import annotations

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from core.db import make_engine, make_sessionmaker
from core.queue import create_celery
from core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS, Settings
from web.api import api
from web.metrics import metrics
from web.pages import pages

# The largest legitimate body: a full batch of the longest reviews, as JSON-escaped UTF-8.
MAX_BODY_BYTES = MAX_BATCH_REVIEWS * MAX_REVIEW_CHARS * 2


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["settings"] = settings
    app.extensions["sessions"] = make_sessionmaker(make_engine(settings.database_url))
    app.extensions["celery"] = create_celery(settings)
    app.extensions["redis"] = redis.Redis.from_url(
        settings.broker_url, socket_timeout=2, socket_connect_timeout=2
    )
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(metrics)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error={"code": code, "message": exc.description}), exc.code
        return exc

    return app
