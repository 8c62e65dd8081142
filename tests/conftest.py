"""Shared fixtures: settings on a migrated database copy, the Flask app on a fake broker, a tiny
trained model, a real Redis server and a private PostgreSQL server."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import fakeredis
import pytest
from flask import Flask
from kombu.transport import redis as kombu_redis
from werkzeug.serving import make_server

from sentiment_cli.processes import start_redis, stop
from sentiment_core.db import make_engine, make_sessionmaker
from sentiment_core.registry import register_version
from sentiment_core.settings import Settings
from tests.databases import database_copy, migrated_template
from tests.factories import tiny_dataset
from tests.postgres_server import PostgresServer, server_binaries

ADMIN_TOKEN = "test-admin-token"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a database made once per session by the real migrations."""
    with migrated_template(tmp_path_factory.mktemp("schema")) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, migrated_db: str) -> Iterator[Settings]:
    """Settings on the test's own copy of the migrated database."""
    with database_copy(migrated_db, tmp_path) as url:
        yield Settings(
            var_dir=tmp_path,
            database_url=url,
            redis_url="redis://127.0.0.1:6399/0",
            model_dir=tmp_path / "models",
            admin_token=ADMIN_TOKEN,
            ratelimit_storage_url="memory://",
            # Tests submit from one address; the rate-limit tests set their own limits.
            submit_rate_limit="10000/minute",
            feedback_rate_limit="10000/minute",
        )


@pytest.fixture
def sessions(settings: Settings):
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    """One in-memory Redis behind both the Celery producer and the app's own client."""
    server = fakeredis.FakeServer()
    monkeypatch.setattr(
        kombu_redis.Channel,
        "_create_client",
        lambda self, asynchronous=False: fakeredis.FakeRedis(server=server),
    )
    return fakeredis.FakeRedis(server=server)


def close_database(app: Flask) -> None:
    """Close the app's pooled database connections and stop its listener, as the end of its
    process would."""
    from web.services import get_services

    services = get_services(app)
    services.announcements.stop()
    with services.sessions() as session:
        session.get_bind().dispose()


@pytest.fixture
def make_app(fake_redis: fakeredis.FakeRedis) -> Iterator[Callable[[Settings], Flask]]:
    """Builds apps on the fake broker, and closes their database connections afterwards."""
    from web.app import create_app
    from web.services import get_services
    from web.waiting import Announcements

    apps: list[Flask] = []

    def make(settings: Settings) -> Flask:
        app = create_app(settings)
        app.config["TESTING"] = True
        services = get_services(app)
        services.redis = fake_redis
        services.announcements = Announcements(fake_redis)
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_database(app)


@pytest.fixture
def app(settings: Settings, make_app: Callable[[Settings], Flask]) -> Flask:
    return make_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def tiny_training(
    tmp_path_factory: pytest.TempPathFactory, migrated_db: str
) -> Iterator[tuple[Settings, Path]]:
    """A model trained once per session on the written reviews, in a database of its own;
    yields those settings and the model's artifact folder."""
    from trainer.train import TrainRequest, train_and_register

    root = tmp_path_factory.mktemp("tiny")
    with database_copy(migrated_db, root) as url:
        settings = Settings(var_dir=root, database_url=url, model_dir=root)
        row = train_and_register(settings, tiny_dataset(), TrainRequest(preset="tiny"))
        yield settings, Path(row.artifact_path)


@pytest.fixture(scope="session")
def tiny_artifact(tiny_training: tuple[Settings, Path]) -> Path:
    return tiny_training[1]


def add_model(settings: Settings, artifact: Path, *, activate: bool = True) -> str:
    """Register a copy of `artifact` in the test's database; returns the version."""
    staged = settings.model_dir / f".staging-copy-{artifact.name}"
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(artifact, staged)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        row = register_version(
            session,
            staged_dir=staged,
            model_dir=settings.model_dir,
            preset="tiny",
            metrics={"test_accuracy": 1.0},
            activate_if_none=activate,
        )
    engine.dispose()
    return row.version


@pytest.fixture
def tiny_model(settings: Settings, tiny_artifact: Path) -> str:
    return add_model(settings, tiny_artifact)


def service_env(settings) -> dict[str, str]:
    env = dict(os.environ, SENTIMENT_VAR=str(settings.var_dir), DATABASE_URL=settings.database_url)
    env.pop("REDIS_URL", None)
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture
def service(settings, tiny_model, redis_server, tmp_path):
    """A real worker process on a real Redis, and the web app served over HTTP; yields the
    settings and the base URL."""
    from web.app import create_app

    settings = replace(settings, redis_url=redis_server)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sentiment_cli.main", "worker"],
            cwd=ROOT, env=service_env(settings), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield settings, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    close_database(app)
    stop([worker])
    print((tmp_path / "worker.log").read_text())  # pytest shows it when the test failed


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A real Redis server on a free port, without persistence; yields its URL."""
    process, url = start_redis(tmp_path / "redis", persist=False)
    yield url
    stop([process])


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server that a test may stop and start again; skipped where the
    server binaries are missing, except in CI."""
    binaries = server_binaries()
    if binaries is None:
        reason = "needs the PostgreSQL server binaries, initdb and pg_ctl (CI installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Not tmp_path: pytest keeps that private to the user running the tests, and as root the
    # server must run as the `postgres` user.
    with tempfile.TemporaryDirectory(prefix="sentiment-pg-") as folder:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        server = PostgresServer(binaries, Path(folder))
        server.start()
        try:
            yield server
        finally:
            if server.running:
                server.stop()
