"""Flask application factory, and the one error handler that answers every refusal: an
operation's (sentiment_core/operations.py) with the status web/errors.py gives its kind, a
framework error with its own status, anything else with a 500 and no stack trace."""

from __future__ import annotations

import logging
import secrets

import redis
from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from sentiment_core.backlog import Backlog
from sentiment_core.db import make_engine, make_sessionmaker
from sentiment_core.errors import OperationError
from sentiment_core.queue import broker_redis, create_celery
from sentiment_core.registry import VERSION_PATTERN
from sentiment_core.schemas import Error
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS, Settings
from web.api import api
from web.encoding import check_form_encoding
from web.errors import hold_retry_after, send_retry_after, status_of
from web.limits import init_limits, retry_after_s
from web.metrics import SUBMISSIONS_REFUSED, metrics
from web.openapi import build_openapi
from web.pages import pages
from web.services import Services, attach_services
from web.waiting import Announcements

log = logging.getLogger(__name__)

# The largest body: a full batch of the longest reviews at 2 bytes a character (README, Safety).
MAX_BODY_BYTES = MAX_BATCH_REVIEWS * MAX_REVIEW_CHARS * 2
MACHINE_PATHS = ("/healthz", "/readyz", "/metrics")  # outside /api/, for machines all the same


class VersionConverter(BaseConverter):
    """A model version's name in a URL, so that /models/rollback names no version."""

    regex = VERSION_PATTERN


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Without a configured key each process signs with its own: fine for one process (tests,
    # --debug); `sentiment web` and `sentiment up` always pass one.
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the token lives as long as the session cookie
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    app.before_request(check_form_encoding)  # before CSRF's hook, which reads the form
    CSRFProtect(app).exempt(api)
    app.after_request(send_retry_after)
    init_limits(app, settings)
    app.url_map.converters["version"] = VersionConverter
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(metrics)
    register_error_handlers(app)
    services = Services(
        settings=settings,
        sessions=make_sessionmaker(make_engine(settings.database_url)),
        celery=create_celery(settings),
        redis=broker_redis(settings),
        backlog=Backlog(settings.max_backlog, on_refused=SUBMISSIONS_REFUSED.inc),
        # A connection of its own, held open for pub/sub; pinged when idle, so a dead one is
        # replaced.
        announcements=Announcements(
            redis.Redis.from_url(
                settings.broker_url,
                socket_connect_timeout=2,
                socket_keepalive=True,
                health_check_interval=30,
            )
        ),
        openapi=build_openapi(app),
    )
    attach_services(app, services)
    return app


def register_error_handlers(app: Flask) -> None:
    """JSON errors from the API and the probes, readable pages elsewhere; never a stack trace."""

    def respond(status: int, code: str, message: str):
        if request.path.startswith("/api/") or request.path in MACHINE_PATHS:
            return jsonify(Error().dump({"error": {"code": code, "message": message}})), status
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        response = make_response(respond(exc.code or 500, code, exc.description or exc.name))
        # Keep the headers the error carries, such as a 405's Allow.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        if exc.code == 429:
            response.headers["Retry-After"] = str(retry_after_s())
        return response

    @app.errorhandler(OperationError)
    def refused(exc: OperationError):
        hold_retry_after(exc)
        return respond(status_of(exc), exc.code, exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = "The form had expired or came from elsewhere; reload the page and try again."
        return respond(400, "csrf_failed", message)

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        log.error("database unavailable: %s", exc.orig)
        message = "The database is unavailable; nothing was stored. Try again shortly."
        return respond(503, "database_unavailable", message)

    @app.errorhandler(PoolTimeout)
    def database_busy(exc: PoolTimeout):
        log.warning("no database connection came free: %s", exc)
        message = "The database is busy; nothing was stored. Try again shortly."
        return respond(503, "database_busy", message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return respond(500, "internal_error", "Something went wrong on our side.")
