"""Who the client is, and the per-client rate limits on submission and feedback.

The counters live in Redis so every web process shares them; if Redis is unreachable the
limits are skipped rather than failing the request (the submission then fails on its own).
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, request
from flask_limiter import Limiter
from limits.errors import StorageError

from sentiment_core.settings import Settings
from web.services import get_services


def client_address() -> str:
    return request.remote_addr or "unknown"


def client_id() -> str:
    """A stable, non-reversible name for the client, stored with its feedback."""
    return hashlib.sha256(client_address().encode()).hexdigest()[:32]


# No X-RateLimit headers: each would cost every limited request a second Redis round trip.
# A refusal (429) says when to retry (`retry_after_s`).
limiter = Limiter(client_address, swallow_errors=True)
submit_limit = limiter.shared_limit(
    lambda: get_services().settings.submit_rate_limit, scope="submit"
)
# Explanations cost a worker far more than a review: limited as submissions are, counted apart.
explain_limit = limiter.shared_limit(
    lambda: get_services().settings.submit_rate_limit, scope="explain"
)
feedback_limit = limiter.shared_limit(
    lambda: get_services().settings.feedback_rate_limit, scope="feedback"
)


def init_limits(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_url or settings.broker_url
    limiter.init_app(app)


def retry_after_s() -> int:
    """For a request the rate limit refused: the seconds until its window resets (1 when Redis
    cannot say: the refusal stands either way)."""
    limit = limiter.current_limit
    try:
        return max(1, int(limit.reset_at - time.time())) if limit else 1
    except StorageError:
        return 1
