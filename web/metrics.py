"""GET /metrics: the web's and the worker pool's metrics on this machine, queue depth, review
counts and the backlog."""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from sentiment_core.backlog import WAITING
from sentiment_core.db import Review, ReviewStatus
from sentiment_core.queue import SCORING_QUEUE
from web.services import get_services

metrics = Blueprint("metrics", __name__)

SUBMISSIONS_REFUSED = Counter(
    "sentiment_submissions_refused", "Submissions refused (503) because the backlog was full"
)


class ServiceCollector(Collector):
    """Read at scrape time: the scoring queue's depth in Redis, reviews per status, and the
    backlog against its limit."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("sentiment_queue_depth", "Scoring messages waiting in Redis")
        try:
            depth.add_metric([], get_services().redis.llen(SCORING_QUEUE))
        except Exception:
            depth.add_metric([], float("nan"))
        yield depth
        reviews = GaugeMetricFamily("sentiment_reviews", "Reviews by status", labels=["status"])
        try:  # the process's own counters are still worth a scrape while the database is down
            with get_services().sessions() as session:
                query = select(Review.status, func.count()).group_by(Review.status)
                counts = {status: float(n) for status, n in session.execute(query).all()}
        except Exception:
            counts = dict.fromkeys(ReviewStatus, float("nan"))
        for status in ReviewStatus:
            reviews.add_metric([status.value], counts.get(status, 0))
        yield reviews
        waiting = sum(counts.get(status, 0) for status in WAITING)
        yield GaugeMetricFamily("sentiment_backlog", "Reviews queued or scoring", value=waiting)
        limit = get_services().settings.max_backlog
        yield GaugeMetricFamily(
            "sentiment_backlog_limit",
            "MAX_BACKLOG: reviews that may wait (0: no limit)",
            value=limit,
        )


def shared_metrics() -> CollectorRegistry:
    """The counters of every process on this machine, read from their shared folder; with none
    (a single process), this process's own."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(SUBMISSIONS_REFUSED)
    return registry


def submissions_refused() -> int:
    """Submissions the web processes on this machine refused to shed load."""
    return int(shared_metrics().get_sample_value("sentiment_submissions_refused_total") or 0)


@metrics.get("/metrics")
def prometheus() -> Response:
    """
    ---
    get:
      summary: Prometheus metrics of the web, the workers on this machine, the queue and reviews
      responses:
        "200":
          description: Prometheus text format
          content:
            text/plain:
              schema: {type: string}
    """
    registry = shared_metrics()
    registry.register(ServiceCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
