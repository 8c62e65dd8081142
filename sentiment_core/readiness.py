"""Which scoring workers are ready, across processes and hosts: each process scoring reviews that
holds a model version, warm (Scorer.warm_up), keeps a record in Redis, and refreshes it; a
record not refreshed (its process died or hung) expires. The web's /readyz counts the records
that hold the active version."""

from __future__ import annotations

import os
import socket

from redis import Redis

READY_KEY = "sentiment:ready:"  # + "<host>:<pid>" of a scoring process; holds its version
READY_TTL_S = 15  # a process that stops refreshing its record drops out within this
REFRESH_EVERY_S = 5  # a third of the TTL: two refreshes may be late before the record expires


def worker_name() -> str:
    """This process's name in its ready record: unique across hosts and processes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def record_ready(redis: Redis, *, worker: str, version: str, ttl_s: int = READY_TTL_S) -> None:
    """Record that `worker` serves `version`, warm, for the next `ttl_s` seconds."""
    redis.set(READY_KEY + worker, version, ex=ttl_s)


def count_ready(redis: Redis, *, version: str) -> int:
    """How many scoring processes recorded themselves ready with `version`."""
    keys = list(redis.scan_iter(match=READY_KEY + "*", count=1000))
    held = redis.mget(keys) if keys else []
    return held.count(version.encode())
