import socket
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, make_url, select
from sqlalchemy.exc import OperationalError, TimeoutError
from sqlalchemy.util.queue import Empty

from sentiment_core.db import (
    CONNECT_TIMEOUT_S,
    FairQueue,
    FairQueuePool,
    Review,
    make_engine,
    make_sessionmaker,
)
from tests.databases import SERVER_URL, execute


@pytest.mark.skipif(not SERVER_URL, reason="SQLite keeps no time zone; needs TEST_DATABASE_URL")
def test_times_come_back_in_utc_whatever_the_servers_zone(settings) -> None:
    database = make_url(settings.database_url).database
    execute(f"ALTER DATABASE \"{database}\" SET timezone = 'America/New_York'")
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        session.add(Review(text="a fine film"))
        session.commit()
        created_at = session.scalars(select(Review.created_at)).one()
    engine.dispose()
    assert created_at.utcoffset() == timedelta(0)


@pytest.mark.skipif(not SERVER_URL, reason="needs TEST_DATABASE_URL")
def test_a_urls_own_connection_options_are_kept(settings) -> None:
    options = {"connect_timeout": "60", "options": "-c search_path=elsewhere"}
    url = make_url(settings.database_url).update_query_dict(options)
    engine = make_engine(url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW search_path").scalar() == "elsewhere"
        assert connection.exec_driver_sql("SHOW timezone").scalar() == "UTC"
        parameters = connection.connection.dbapi_connection.info.get_parameters()
        assert parameters["connect_timeout"] == "60" and parameters["keepalives"] == "1"
    engine.dispose()


def test_a_postgresql_server_that_never_answers_fails_the_connection_in_time() -> None:
    hole = socket.socket()  # takes connections (the kernel's backlog) and never answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    engine = make_engine(f"postgresql+psycopg://u:p@127.0.0.1:{hole.getsockname()[1]}/db")
    started = time.monotonic()
    with pytest.raises(OperationalError, match="timeout"):
        engine.connect()
    assert time.monotonic() - started < 2 * CONNECT_TIMEOUT_S
    hole.close()


def test_a_connection_put_back_goes_to_the_thread_that_waited_not_to_one_arriving(
    tmp_path,
) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}",
        poolclass=FairQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,
    )
    pool = engine.pool
    assert isinstance(pool, FairQueuePool) and isinstance(pool._pool, FairQueue)
    first = engine.connect()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(engine.connect()))
    waiter.start()
    deadline = time.monotonic() + 5
    while not pool._pool.waiting:
        assert time.monotonic() < deadline, "the thread never waited"
        time.sleep(0.01)
    first.close()  # back to the pool: handed to the waiting thread
    with pytest.raises(TimeoutError):
        engine.connect()  # arrives as it is handed over: waits in line, and times out
    waiter.join(5)
    assert len(got) == 1 and not pool._pool.waiting
    got[0].close()  # type: ignore[attr-defined]
    engine.connect().close()  # free again: taken at once
    engine.dispose()


def test_a_wait_that_times_out_leaves_the_line() -> None:
    queue: FairQueue = FairQueue(1)
    with pytest.raises(Empty):
        queue.get(timeout=0.05)
    assert not queue.waiting
    queue.put("connection")
    assert queue.get(timeout=0.05) == "connection"
