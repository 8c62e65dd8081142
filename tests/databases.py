"""Databases under test: the real migrations build a template once per session, and every test
gets a fresh copy of it. On SQLite the copy is a file; with `TEST_DATABASE_URL` (a PostgreSQL
URL whose user may create databases) each copy is a database made from the template there."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from sentiment_core.migrate import upgrade_database
from sentiment_core.settings import Settings

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")


@contextmanager
def empty_database(folder: Path) -> Iterator[str]:
    """A database without tables; yields its URL, then drops it."""
    if not SERVER_URL:
        yield f"sqlite:///{folder / 'new.db'}"
        return
    with server_database() as url:
        yield url


@contextmanager
def migrated_template(folder: Path) -> Iterator[str]:
    """A database made by the real migrations; yields its URL, then drops it."""
    with empty_database(folder) as url:
        upgrade_database(Settings(database_url=url))
        yield url


@contextmanager
def database_copy(template: str, folder: Path) -> Iterator[str]:
    """A fresh copy of the `template` database; yields its URL, then drops it."""
    if template.startswith("sqlite:///"):
        path = folder / "sentiment.db"
        shutil.copy(template.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"
        return
    with server_database(template=make_url(template).database) as url:
        yield url


@contextmanager
def server_database(template: str | None = None) -> Iterator[str]:
    """A new database on the `TEST_DATABASE_URL` server, dropped afterwards even while the
    code under test still holds connections to it."""
    name = f"sentiment_test_{uuid.uuid4().hex[:16]}"
    execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        # Our own leftover connections are ended here; DROP itself then waits out the rest
        # (an autovacuum worker, say), which `WITH (FORCE)` would need privileges to end.
        execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            f"datname = '{name}' AND usename = current_user AND pid <> pg_backend_pid()"
        )
        execute(f'DROP DATABASE IF EXISTS "{name}"')


def execute(statement: str) -> None:
    """Run `statement` outside a transaction, as CREATE and DROP DATABASE need."""
    engine = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()
