"""GET /metrics: the worker pool's metrics on this machine, queue depth and review counts."""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from sentiment_core.db import Review, ReviewStatus
from sentiment_core.queue import SCORING_QUEUE
from web.services import get_services

metrics = Blueprint("metrics", __name__)


class ServiceCollector(Collector):
    """Read at scrape time: the scoring queue's depth in Redis, and reviews per status."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("sentiment_queue_depth", "Scoring messages waiting in Redis")
        try:
            depth.add_metric([], get_services().redis.llen(SCORING_QUEUE))
        except Exception:
            depth.add_metric([], float("nan"))
        yield depth
        reviews = GaugeMetricFamily("sentiment_reviews", "Reviews by status", labels=["status"])
        with get_services().sessions() as session:
            counts = dict(
                session.execute(select(Review.status, func.count()).group_by(Review.status)).all()
            )
        for status in ReviewStatus:
            reviews.add_metric([status.value], counts.get(status, 0))
        yield reviews


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
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    registry.register(ServiceCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
