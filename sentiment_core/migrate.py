"""Apply the Alembic migrations to the configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from sentiment_core.settings import Settings


def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Bring the schema at `settings.database_url` up to `revision`."""
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    command.upgrade(alembic_config(settings.database_url), revision)


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for the migrations in `migrations/`, on `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = database_url
    return config
