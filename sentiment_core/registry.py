"""The model registry: versions, their artifacts, and the `active` alias that serving follows."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from weakref import WeakSet

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sentiment_core.db import ModelVersion, utcnow
from sentiment_core.errors import Conflict

MODEL_FILE = "model.keras"
PREPROCESSOR_FILE = "preprocessor.json"
ARTIFACT_FILES = (MODEL_FILE, PREPROCESSOR_FILE)
VERSION_PATTERN = "v[0-9]+"  # every version's name, as register_version numbers them
# Tries at a free name: each registration at once (a manual `sentiment train` beside a retraining
# run) that takes a name first pushes the others to the next, and a few at once is already rare.
NAME_ATTEMPTS = 10


def artifact_sha256(artifact_dir: Path) -> str:
    """One checksum over the files that define a version's behaviour."""
    digest = hashlib.sha256()
    for name in ARTIFACT_FILES:
        digest.update(name.encode())
        digest.update((artifact_dir / name).read_bytes())
    return digest.hexdigest()


def register_version(
    session: Session,
    *,
    staged_dir: Path,
    model_dir: Path,
    preset: str,
    metrics: dict,
    data_fingerprint: str | None = None,
    parent_version: str | None = None,
    activate_if_none: bool = True,
) -> ModelVersion:
    """Move a staged artifact into `model_dir/<version>` and record it, in one transaction.

    The new version becomes active when no version is active yet and `activate_if_none`. A
    concurrent registration that takes the name first pushes this one to the next; a
    registration that fails removes the staged folder, so no `.staging-*` folder outlives it.
    """
    try:
        model_dir.mkdir(parents=True, exist_ok=True)  # the first version may come from elsewhere
        fields = {
            "preset": preset,
            "artifact_sha256": artifact_sha256(staged_dir),
            "metrics": metrics,
            "data_fingerprint": data_fingerprint,
            "parent_version": parent_version,
        }
        for attempt in range(1, NAME_ATTEMPTS + 1):
            try:
                row = add_version(session, model_dir, activate_if_none, fields)
                break
            except IntegrityError:
                session.rollback()  # a concurrent registration took the name: try the next
                if attempt == NAME_ATTEMPTS:
                    raise
        final_dir = Path(row.artifact_path)
        os.rename(staged_dir, final_dir)  # unlike shutil.move, never into an existing folder
        try:
            session.commit()
        except BaseException:
            os.rename(final_dir, staged_dir)
            raise
    except BaseException:
        session.rollback()
        shutil.rmtree(staged_dir, ignore_errors=True)
        raise
    return row


def add_version(
    session: Session, model_dir: Path, activate_if_none: bool, fields: dict
) -> ModelVersion:
    """Insert a version under the next free name; the unique constraint on the name refuses it
    (IntegrityError) when a concurrent registration took that name first."""
    version = f"v{next_number(session, model_dir)}"
    activate = activate_if_none and active_version(session) is None
    row = ModelVersion(
        version=version,
        artifact_path=str(model_dir / version),
        active=activate,
        activated_at=utcnow() if activate else None,
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def next_number(session: Session, model_dir: Path) -> int:
    """One past the highest version number in the registry or among `model_dir`'s folders, so
    that a new version never lands in an old one's folder (the database was reset, the models
    kept)."""
    names = [*session.scalars(select(ModelVersion.version)), *(p.name for p in model_dir.iterdir())]
    numbers = [int(name[1:]) for name in names if re.fullmatch(VERSION_PATTERN, name)]
    return max(numbers, default=0) + 1


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.active.is_(True)))


# Databases known to have an active version. Once one has, it always has: activating a version
# deactivates the others, and nothing deactivates the last one.
_SERVING: WeakSet[Engine] = WeakSet()


def serving(session: Session) -> bool:
    """Whether a version is active; asked of each database only until it says yes."""
    engine = session.get_bind().engine
    if engine not in _SERVING and active_version(session) is not None:
        _SERVING.add(engine)
    return engine in _SERVING


def get_version(session: Session, version: str) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.version == version))


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))


def previous_version(session: Session) -> ModelVersion | None:
    """The version that was active before the current one."""
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.active.is_(False), ModelVersion.activated_at.is_not(None))
        .order_by(ModelVersion.activated_at.desc())
        .limit(1)
    )


def check_artifact(row: ModelVersion) -> None:
    """Conflict unless the version's artifact files are there and match its checksum."""
    folder = Path(row.artifact_path)
    try:
        intact = artifact_sha256(folder) == row.artifact_sha256
    except OSError:
        intact = False
    if not intact:
        message = f"model {row.version}: its artifact at {folder} is missing or damaged"
        raise Conflict("artifact_missing", message)


def activate_version(session: Session, version: str) -> ModelVersion:
    """Point the `active` alias at `version`; raises LookupError for an unknown version, and
    Conflict for one whose artifact files are gone or no longer match its checksum, which no
    worker could load (hashed before this takes its locks: a fifth of a second for 60 MB)."""
    row = get_version(session, version)
    if row is None:
        raise LookupError(f"no model version {version!r}")
    check_artifact(row)
    # Every row locked in one order first, so that concurrent activations wait in line: the two
    # updates below lock them in different orders and deadlock on PostgreSQL (SQLite has no
    # FOR UPDATE and locks the whole database on the first write).
    session.scalars(select(ModelVersion.id).order_by(ModelVersion.id).with_for_update()).all()
    session.execute(update(ModelVersion).where(ModelVersion.id != row.id).values(active=False))
    # A statement, not `row.active = True`: the row may have been read before a concurrent
    # activation committed, and an attribute set to the value it already holds writes nothing.
    activated = {"active": True, "activated_at": utcnow()}
    session.execute(update(ModelVersion).where(ModelVersion.id == row.id).values(activated))
    session.commit()
    return row
