"""Docker's healthcheck of a worker (`python -m worker.health`): healthy while the worker on this
host answers a ping through the broker. A worker that has lost Redis, or whose consumer hangs,
shows unhealthy, though its metrics port may still answer. Exits 0, or 1 with one line."""

from __future__ import annotations

import socket
import sys

from sentiment_core.queue import create_celery
from sentiment_core.settings import Settings

TIMEOUT_S = 3


def main() -> int:
    node = f"celery@{socket.gethostname()}"
    app = create_celery(Settings.from_env())
    try:
        replies = app.control.ping(destination=[node], timeout=TIMEOUT_S)
    except Exception as exc:
        print(f"unhealthy: the broker cannot be reached: {exc}", file=sys.stderr)
        return 1
    if not replies:
        print(f"unhealthy: {node} did not answer within {TIMEOUT_S} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
