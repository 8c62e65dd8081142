from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from sentiment_core.db import Base, RunStatus, TrainingRun, make_engine, make_sessionmaker
from sentiment_core.migrate import alembic_config


def test_the_migrations_build_the_schema_the_models_describe(settings) -> None:
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrading_leaves_one_run_running_the_newest(settings) -> None:
    """Runs recorded as running at once before the database kept to one: all but the newest
    are failed, so the index that keeps to one can be built."""
    config = alembic_config(settings.database_url)
    command.downgrade(config, "0011")
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        for status in ("running", "promoted", "running"):
            connection.execute(
                text(
                    "INSERT INTO training_runs (trigger, reason, status, counts, metrics, "
                    "by_trainer, started_at) VALUES ('admin', 'x', :status, '{}', '{}', true, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"status": status},
            )
    command.upgrade(config, "head")
    with make_sessionmaker(engine)() as session:
        runs = session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()
        assert [run.status for run in runs] == [
            RunStatus.failed,
            RunStatus.promoted,
            RunStatus.running,
        ]
        assert runs[0].error.startswith("a later run was started") and runs[0].finished_at
    engine.dispose()
