"""The model registry: versions, their artifacts, and the `active` alias that serving follows."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from weakref import WeakSet

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from sentiment_core.db import ModelVersion, utcnow

MODEL_FILE = "model.keras"
PREPROCESSOR_FILE = "preprocessor.json"
ARTIFACT_FILES = (MODEL_FILE, PREPROCESSOR_FILE)
VERSION_PATTERN = "v[0-9]+"  # every version's name, as register_version numbers them


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

    The new version becomes active when no version is active yet and `activate_if_none`.
    """
    number = (session.scalar(select(func.max(ModelVersion.id))) or 0) + 1
    version = f"v{number}"
    final_dir = model_dir / version
    row = ModelVersion(
        version=version,
        preset=preset,
        artifact_path=str(final_dir),
        artifact_sha256=artifact_sha256(staged_dir),
        metrics=metrics,
        data_fingerprint=data_fingerprint,
        parent_version=parent_version,
    )
    session.add(row)
    if activate_if_none and active_version(session) is None:
        row.active = True
        row.activated_at = utcnow()
    session.flush()
    shutil.move(str(staged_dir), final_dir)
    try:
        session.commit()
    except Exception:
        shutil.move(str(final_dir), staged_dir)
        raise
    return row


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


def activate_version(session: Session, version: str) -> ModelVersion:
    """Point the `active` alias at `version`; raises LookupError for an unknown version."""
    row = get_version(session, version)
    if row is None:
        raise LookupError(f"no model version {version!r}")
    session.execute(update(ModelVersion).where(ModelVersion.id != row.id).values(active=False))
    row.active = True
    row.activated_at = utcnow()
    session.commit()
    return row
