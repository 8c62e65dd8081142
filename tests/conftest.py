"""Shared fixtures: settings on a migrated database copy, the Flask app on a fake broker, a tiny
trained model, and a real Redis server."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fakeredis
import pytest
from kombu.transport import redis as kombu_redis
from werkzeug.serving import make_server

from cli.processes import start_redis, stop
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade_database
from core.registry import register_version
from core.settings import Settings
from tests.factories import tiny_dataset

ADMIN_TOKEN = "test-admin-token"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file made once per session by the real migrations."""
    path = tmp_path_factory.mktemp("schema") / "template.db"
    upgrade_database(Settings(database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_db: Path) -> Settings:
    database = tmp_path / "sentiment.db"
    shutil.copy(migrated_db, database)
    return Settings(
        var_dir=tmp_path,
        database_url=f"sqlite:///{database}",
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


@pytest.fixture
def app(settings: Settings, fake_redis: fakeredis.FakeRedis):
    from web.app import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    app.extensions["redis"] = fake_redis
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Path:
    """A model trained once per session on the written reviews; its artifact folder."""
    from trainer.train import TrainRequest, train_and_register

    root = tmp_path_factory.mktemp("tiny")
    database = root / "sentiment.db"
    shutil.copy(migrated_db, database)
    settings = Settings(var_dir=root, database_url=f"sqlite:///{database}", model_dir=root)
    row = train_and_register(settings, tiny_dataset(), TrainRequest(preset="tiny"))
    return Path(row.artifact_path)


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
            [sys.executable, "-m", "cli.main", "worker"],
            cwd=ROOT, env=service_env(settings), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield settings, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    stop([worker])
    print((tmp_path / "worker.log").read_text())  # pytest shows it when the test failed


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A real Redis server on a free port, without persistence; yields its URL."""
    process, url = start_redis(tmp_path / "redis", persist=False)
    yield url
    stop([process])
