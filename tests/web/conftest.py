"""Fixtures of the web tests that read back stored reviews."""

from dataclasses import replace

import pytest

from sentiment_core.db import Review, ReviewStatus, Sentiment, utcnow
from sentiment_core.readiness import record_ready


@pytest.fixture
def fuzz_app(settings, make_app, tiny_model, sessions, fake_redis):
    """The app with limits the fuzz cannot reach, a scoring worker ready, and one review of each
    status to read back."""
    app = make_app(
        replace(settings, submit_rate_limit="100000/minute", feedback_rate_limit="100000/minute")
    )
    record_ready(fake_redis, worker="fuzz:1", version=tiny_model, ttl_s=3600)
    with sessions() as session:
        session.add_all(
            [
                Review(text="queued", status=ReviewStatus.queued),
                Review(
                    text="scored",
                    status=ReviewStatus.done,
                    sentiment=Sentiment.positive,
                    score=0.9,
                    model_version=tiny_model,
                    scored_at=utcnow(),
                ),
                Review(text="failed", status=ReviewStatus.failed, error="broken"),
            ]
        )
        session.commit()
    return app


@pytest.fixture
def limited_client(settings, make_app, tiny_model):
    limits = replace(settings, submit_rate_limit="3/minute", feedback_rate_limit="2/minute")
    return make_app(limits).test_client()
