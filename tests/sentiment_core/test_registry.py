import shutil

import pytest
from sqlalchemy import event

from sentiment_core.errors import Conflict
from sentiment_core.operations import rollback_model
from sentiment_core.registry import (
    activate_version,
    active_version,
    artifact_sha256,
    list_versions,
    register_version,
    serving,
)


def stage(settings, name: str, content: bytes = b"weights"):
    folder = settings.model_dir / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(content)
    (folder / "preprocessor.json").write_text("{}")
    return folder


def register(session, settings, name: str, content: bytes = b"weights", preset="seed"):
    return register_version(
        session,
        staged_dir=stage(settings, name, content),
        model_dir=settings.model_dir,
        preset=preset,
        metrics={"test_accuracy": 0.5},
    )


def test_the_first_version_may_be_staged_outside_a_model_folder_not_made_yet(
    settings, sessions, tmp_path
) -> None:
    staged = stage(settings, ".staging-a")
    outside = staged.rename(tmp_path / "staged")
    shutil.rmtree(settings.model_dir)
    with sessions() as session:
        row = register_version(
            session, staged_dir=outside, model_dir=settings.model_dir, preset="seed", metrics={}
        )
    assert row.version == "v1" and (settings.model_dir / "v1" / "model.keras").is_file()


def test_first_version_is_activated_and_moved_into_place(settings, sessions) -> None:
    with sessions() as session:
        row = register(session, settings, ".staging-a")
    assert row.version == "v1" and row.active
    assert not (settings.model_dir / ".staging-a").exists()
    assert (settings.model_dir / "v1" / "model.keras").read_bytes() == b"weights"
    assert row.artifact_sha256 == artifact_sha256(settings.model_dir / "v1")


def test_later_versions_wait_for_activation(settings, sessions) -> None:
    with sessions() as session:
        register(session, settings, ".staging-a")
        second = register(session, settings, ".staging-b", b"other weights")
        assert not second.active
        assert active_version(session).version == "v1"
        activate_version(session, "v2")
        assert active_version(session).version == "v2"
        assert [(r.version, r.active) for r in list_versions(session)] == [
            ("v2", True),
            ("v1", False),
        ]
        assert second.artifact_sha256 != list_versions(session)[1].artifact_sha256


def test_a_new_version_never_moves_into_a_kept_folder(settings, sessions) -> None:
    kept = stage(settings, "v1", b"a model from before the database was reset")
    with sessions() as session:
        row = register(session, settings, ".staging-a")
    assert row.version == "v2"
    assert (kept / "model.keras").read_bytes() == b"a model from before the database was reset"
    assert sorted(path.name for path in kept.iterdir()) == ["model.keras", "preprocessor.json"]
    assert row.artifact_sha256 == artifact_sha256(settings.model_dir / "v2")


def test_a_failed_registration_removes_its_staged_folder(settings, sessions) -> None:
    from sqlalchemy.exc import IntegrityError

    with sessions() as session, pytest.raises(IntegrityError):
        register(session, settings, ".staging-a", preset=None)  # the database refuses the row
    assert list(settings.model_dir.iterdir()) == []


def test_activating_a_version_whose_artifact_is_gone_is_refused(settings, sessions) -> None:
    with sessions() as session:
        register(session, settings, ".staging-a")
        register(session, settings, ".staging-b", b"other weights")
        activate_version(session, "v2")
    shutil.rmtree(settings.model_dir / "v1")
    with sessions() as session, pytest.raises(Conflict, match="v1") as refused:
        activate_version(session, "v1")
    assert refused.value.code == "artifact_missing"
    with pytest.raises(Conflict, match="v1"):
        rollback_model(sessions=sessions)
    with sessions() as session:
        assert active_version(session).version == "v2"


def test_activating_a_version_whose_artifact_changed_is_refused(settings, sessions) -> None:
    with sessions() as session:
        register(session, settings, ".staging-a")
        register(session, settings, ".staging-b", b"other weights")
        activate_version(session, "v2")
    (settings.model_dir / "v1" / "preprocessor.json").write_text('{"damaged": true}')
    with sessions() as session, pytest.raises(Conflict, match="v1.* is missing or damaged"):
        activate_version(session, "v1")
    with sessions() as session:
        assert active_version(session).version == "v2"


def test_activating_an_unknown_version_fails(settings, sessions) -> None:
    with sessions() as session, pytest.raises(LookupError, match="v9"):
        activate_version(session, "v9")


def test_the_database_refuses_a_second_active_version(settings, sessions) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from sentiment_core.db import ModelVersion

    with sessions() as session:
        register(session, settings, ".staging-a")
        register(session, settings, ".staging-b", b"other weights")
        with pytest.raises(IntegrityError):
            session.execute(update(ModelVersion).values(active=True))
        session.rollback()
        assert [row.active for row in list_versions(session)] == [False, True]


def test_serving_asks_the_database_only_until_a_version_is_active(settings, sessions) -> None:
    with sessions() as session:
        assert not serving(session)
        register(session, settings, ".staging-a")
    statements = []
    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with sessions() as session:
        assert serving(session)
        assert serving(session)
    assert len(statements) == 1
