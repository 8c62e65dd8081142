from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sentiment_core.db import Base, make_engine


def test_the_migrations_build_the_schema_the_models_describe(settings) -> None:
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
