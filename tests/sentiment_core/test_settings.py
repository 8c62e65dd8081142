from pathlib import Path

import pytest

from sentiment_core.settings import Settings


def test_defaults_are_local_files_and_an_embedded_redis(monkeypatch, tmp_path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "MODEL_DIR", "IMDB_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENTIMENT_VAR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'sentiment.db'}"
    assert settings.redis_url is None
    assert settings.model_dir == tmp_path / "models"
    assert settings.imdb_data is None
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        settings.broker_url  # noqa: B018


def test_environment_overrides_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/sentiment")
    monkeypatch.setenv("REDIS_URL", "redis://broker:6379/0")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("IMDB_DATA", "/data/imdb.tar.gz")
    monkeypatch.setenv("BATCH_SIZE", "32")
    settings = Settings.from_env()
    assert settings.database_url == "postgresql://db/sentiment"
    assert settings.broker_url == "redis://broker:6379/0"
    assert settings.model_dir == Path(tmp_path / "m")
    assert settings.imdb_data == "/data/imdb.tar.gz"
    assert settings.batch_size == 32
