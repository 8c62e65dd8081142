"""Admin actions: the token check and moving the active model."""

from __future__ import annotations

import hmac

from flask import current_app

from sentiment_core.db import ModelVersion
from sentiment_core.queue import TRAINING_QUEUE, request_retraining
from sentiment_core.registry import activate_version, previous_version
from sentiment_core.runs import running_run
from web.reviews import Rejected, sessions


def check_admin(token: str | None) -> None:
    expected = current_app.extensions["settings"].admin_token
    if not expected:
        raise Rejected(403, "admin_disabled", "admin actions are off: ADMIN_TOKEN is not set")
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Rejected(401, "unauthorized", "a valid admin token is required")


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def activate_model(version: str) -> ModelVersion:
    with sessions() as session:
        try:
            return activate_version(session, version)
        except LookupError:
            raise Rejected(404, "not_found", f"no model version {version}") from None


def rollback_model() -> ModelVersion:
    with sessions() as session:
        previous = previous_version(session)
        if previous is None:
            raise Rejected(409, "no_previous_version", "no version was active before this one")
        return activate_version(session, previous.version)


def start_retraining() -> None:
    """Ask the trainer for a run now; refused while one is waiting or in progress."""
    with sessions() as session:
        running = running_run(session)
    if running is not None:
        raise Rejected(409, "run_in_progress", f"retraining run {running.id} is still in progress")
    unavailable = Rejected(503, "queue_unavailable", "the training queue is unavailable")
    try:
        waiting = current_app.extensions["redis"].llen(TRAINING_QUEUE)
    except Exception as exc:
        raise unavailable from exc
    if waiting:
        raise Rejected(409, "run_queued", "a retraining run is already waiting for the trainer")
    try:
        request_retraining(current_app.extensions["celery"], "requested by an admin")
    except Exception as exc:
        raise unavailable from exc
