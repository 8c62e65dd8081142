"""Registrations and activations at once, as a manual `sentiment train` or an admin meets a
retraining run: each waits its turn or takes the next name, none fails."""

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from sentiment_core import registry
from sentiment_core.db import make_engine, make_sessionmaker
from sentiment_core.migrate import upgrade_database
from sentiment_core.registry import activate_version, active_version, artifact_sha256, list_versions
from tests.sentiment_core.test_registry import register


def test_a_registration_that_loses_its_name_takes_the_next(settings, sessions) -> None:
    other = make_engine(settings.database_url)

    def register_first(conn, cursor, statement, *args) -> None:
        """Another process registers between this one's choice of a name and its insert."""
        if statement.startswith("INSERT INTO model_versions") and not other_rows:
            with make_sessionmaker(other)() as session:
                other_rows.append(register(session, settings, ".staging-other", b"other"))

    other_rows: list = []
    event.listen(sessions.kw["bind"], "before_cursor_execute", register_first)
    with sessions() as session:
        row = register(session, settings, ".staging-mine", b"mine")
        versions = [(r.version, r.active) for r in list_versions(session)]
    other.dispose()
    assert [other_rows[0].version, row.version] == ["v1", "v2"]
    assert versions == [("v2", False), ("v1", True)]
    assert row.artifact_sha256 == artifact_sha256(settings.model_dir / "v2")
    assert sorted(path.name for path in settings.model_dir.iterdir()) == ["v1", "v2"]


def test_a_registration_that_loses_every_name_fails_and_leaves_no_folder(
    settings, sessions, monkeypatch
) -> None:
    monkeypatch.setattr(registry, "NAME_ATTEMPTS", 2)
    other = make_engine(settings.database_url)
    others: list = []

    def register_first(conn, cursor, statement, *args) -> None:
        """Another process takes each name this one chose, before its insert."""
        if statement.startswith("INSERT INTO model_versions"):
            with make_sessionmaker(other)() as session:
                others.append(register(session, settings, f".staging-{len(others)}", b"other"))

    event.listen(sessions.kw["bind"], "before_cursor_execute", register_first)
    with sessions() as session, pytest.raises(IntegrityError):
        register(session, settings, ".staging-mine", b"mine")
    other.dispose()
    assert [row.version for row in others] == ["v1", "v2"]
    assert sorted(path.name for path in settings.model_dir.iterdir()) == ["v1", "v2"]


def test_concurrent_activations_wait_in_line_on_postgresql(settings, postgres_server) -> None:
    settings = replace(settings, database_url=postgres_server.url)
    upgrade_database(settings)
    engines = [make_engine(settings.database_url) for _ in range(3)]
    first, second, watcher = (make_sessionmaker(engine) for engine in engines)
    with first() as session:
        for name in "abc":
            register(session, settings, f".staging-{name}", name.encode())
    locked, resume = threading.Event(), threading.Event()

    def pause_after_locking(conn, cursor, statement, *args) -> None:
        """Hold the first activation's first row locks until the second waits on them."""
        if not locked.is_set() and ("FOR UPDATE" in statement or statement.startswith("UPDATE")):
            locked.set()
            resume.wait(30)

    errors: list[Exception] = []

    def activate(sessions, version: str) -> None:
        try:
            with sessions() as session:
                activate_version(session, version)
        except Exception as exc:
            errors.append(exc)

    event.listen(engines[0], "after_cursor_execute", pause_after_locking)
    threads = [threading.Thread(target=activate, args=(first, "v2"))]
    threads[0].start()
    assert locked.wait(30)
    threads.append(threading.Thread(target=activate, args=(second, "v1")))
    threads[1].start()
    deadline = time.monotonic() + 30
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    while True:
        with watcher() as session:  # a fresh transaction: each sees the activity anew
            if session.scalar(text(waiting)):
                break
        assert time.monotonic() < deadline, "the second activation never waited for the first"
        time.sleep(0.05)
    resume.set()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with watcher() as session:
        assert active_version(session).version == "v1"
    for engine in engines:
        engine.dispose()
