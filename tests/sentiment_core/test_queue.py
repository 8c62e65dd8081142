"""The broker as the web sends to it."""

import socket
import time

import pytest
from kombu.exceptions import OperationalError

from sentiment_core.queue import BROKER_TIMEOUT_S, create_celery, enqueue_reviews
from sentiment_core.settings import Settings


def test_a_redis_that_never_answers_fails_a_send_instead_of_hanging(tmp_path) -> None:
    """A Redis that accepts connections and never replies (paused, partitioned): the send fails,
    and the web answers 503, instead of holding its thread for ever."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes each connection; nobody ever reads or replies
        port = silent.getsockname()[1]
        app = create_celery(Settings(var_dir=tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="Timeout"):
            enqueue_reviews(app, [1])
    assert time.monotonic() - started < 10 * BROKER_TIMEOUT_S
