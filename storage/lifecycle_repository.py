"""Data access for the lifecycle jobs. Each function takes the session as a keyword argument.

Callers own transactions, except for the lock functions, which commit: a lease is only worth
anything once other processes can see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.lifecycle_tables import (
    AliasMove,
    DatasetItem,
    DatasetVersion,
    DriftIncident,
    DriftReport,
    GoldenItem,
    JobLock,
    JobRun,
    ModelArtifact,
    ModelVersion,
)
from storage.repository import chunked
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import CHAMPION, SKIP, RunStatus


# --- datasets -------------------------------------------------------------------------------------
def dataset_version(version: int, *, session: Session) -> DatasetVersion | None:
    return session.get(DatasetVersion, version)


def latest_dataset_version(*, session: Session) -> DatasetVersion | None:
    return session.exec(select(DatasetVersion).order_by(DatasetVersion.id.desc())).first()


def dataset_items(
    version: int, *, session: Session, split: str | None = None, photo_ids: Iterable[int] | None = None
) -> list[DatasetItem]:
    """Dataset version ``version`` put together: each photo's item from the newest version in its chain.

    The chain runs back through parents to a version that lists every photo. Versions form one line
    (each fold's parent is the newest version, pruning relinks), so the chain is every version
    between that one and ``version``. Photos removed on the way are left out. ``photo_ids``: only
    these photos' items (what a fold compares its changes with).
    """
    start = _complete_version_of(version, session=session)
    if start is None:
        return []
    in_chain = select(DatasetItem).where(
        DatasetItem.dataset_version >= start, DatasetItem.dataset_version <= version
    )
    statements = (
        [in_chain]
        if photo_ids is None
        else [in_chain.where(DatasetItem.photo_id.in_(chunk)) for chunk in chunked(photo_ids)]
    )
    newest: dict[int, DatasetItem] = {}
    for statement in statements:
        for item in session.exec(statement.order_by(DatasetItem.dataset_version)):
            newest[item.photo_id] = item
    kept = (item for item in newest.values() if not item.removed and (split is None or item.split == split))
    return sorted(kept, key=lambda item: item.photo_id)


def _complete_version_of(version: int, *, session: Session) -> int | None:
    """The parentless version that ``version``'s chain of changes starts from (None: no such version)."""
    statement = select(DatasetVersion.id, DatasetVersion.parent).where(DatasetVersion.id <= version)
    parents = {row_id: parent for row_id, parent in session.exec(statement)}
    if version not in parents:
        return None
    if session.get(DatasetVersion, version).pruned:
        raise ValueError(f"dataset version {version} was pruned (no model was trained on it)")
    while parents[version] is not None:
        version = parents[version]
    return version


def dataset_versions(*, session: Session) -> list[DatasetVersion]:
    return list(session.exec(select(DatasetVersion).order_by(DatasetVersion.id)))


def referenced_dataset_versions(*, session: Session) -> set[int]:
    """Versions a model was trained on or the golden set was filled from: never pruned."""
    trained = select(ModelVersion.dataset_version).where(ModelVersion.dataset_version.is_not(None))
    return set(session.exec(trained)) | set(session.exec(select(GoldenItem.added_in)))


def drop_unneeded_items(
    version: DatasetVersion, kept: int, *, complete_between: bool, session: Session
) -> int:
    """Delete the items of ``version`` (being pruned) that no version from ``kept`` on reads.

    ``kept``: the next version kept. Its chain reads an item of ``version`` unless a newer item of
    the same photo comes before it, or a version listing every photo (``complete_between``) does.
    Versions after ``kept`` read through it, so they need no more. Returns the number deleted.
    """
    mine = DatasetItem.dataset_version == version.id
    if complete_between:
        return session.exec(delete(DatasetItem).where(mine)).rowcount
    newer = select(DatasetItem.photo_id).where(
        DatasetItem.dataset_version > version.id, DatasetItem.dataset_version <= kept
    )
    return session.exec(delete(DatasetItem).where(mine, DatasetItem.photo_id.in_(newer))).rowcount


def max_label_id(*, session: Session) -> int:
    return session.exec(select(func.max(Label.id))).one() or 0


def labeled_photo_ids(*, session: Session, up_to_label_id: int, after_label_id: int = 0) -> list[int]:
    """Photos with a label whose id is in (``after_label_id``, ``up_to_label_id``]."""
    statement = select(Label.photo_id).where(Label.id > after_label_id, Label.id <= up_to_label_id)
    return sorted(session.exec(statement.distinct()))


def labels_up_to(
    photo_ids: Iterable[int], up_to_label_id: int, *, session: Session
) -> dict[int, list[Label]]:
    grouped: dict[int, list[Label]] = {}
    for chunk in chunked(photo_ids):
        statement = (
            select(Label)
            .where(Label.photo_id.in_(chunk), Label.id <= up_to_label_id)
            .order_by(Label.created_at, Label.id)
        )
        for label in session.exec(statement):
            grouped.setdefault(label.photo_id, []).append(label)
    return grouped


def photos_by_id(photo_ids: Iterable[int], *, session: Session) -> dict[int, Photo]:
    found: dict[int, Photo] = {}
    for chunk in chunked(photo_ids):
        for photo in session.exec(select(Photo).where(Photo.id.in_(chunk))):
            found[photo.id] = photo
    return found


def predictions_by_id(prediction_ids: Iterable[int], *, session: Session) -> dict[int, Prediction]:
    found: dict[int, Prediction] = {}
    for chunk in chunked(i for i in prediction_ids if i is not None):
        statement = select(Prediction).where(Prediction.id.in_(chunk))
        for prediction in session.exec(statement):
            found[prediction.id] = prediction
    return found


def golden_items(*, session: Session) -> list[GoldenItem]:
    return list(session.exec(select(GoldenItem).order_by(GoldenItem.photo_id)))


# --- photos for drift -----------------------------------------------------------------------------
def recent_photo_ids(
    limit: int, *, session: Session, until: datetime | None = None, since: datetime | None = None
) -> list[int]:
    """The ``limit`` most recently received photos (at or before ``until``, at or after ``since``),
    oldest first."""
    statement = select(Photo.id)
    if until is not None:
        statement = statement.where(Photo.received_at <= until)
    if since is not None:
        statement = statement.where(Photo.received_at >= since)
    ids = list(session.exec(statement.order_by(Photo.received_at.desc(), Photo.id.desc()).limit(limit)))
    return ids[::-1]


def first_photo_ids(limit: int, *, session: Session) -> list[int]:
    statement = select(Photo.id).order_by(Photo.received_at, Photo.id).limit(limit)
    return list(session.exec(statement))


# --- model registry -------------------------------------------------------------------------------
def model_version(version: str, *, session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()


def model_versions(*, session: Session, status: str | None = None) -> list[ModelVersion]:
    statement = select(ModelVersion)
    if status is not None:
        statement = statement.where(ModelVersion.status == status)
    return list(session.exec(statement.order_by(ModelVersion.id)))


def add_artifact(version: str, name: str, data: bytes, *, session: Session) -> None:
    session.add(ModelArtifact(version=version, name=name, data=data))


def artifacts(version: str, *, session: Session) -> dict[str, bytes]:
    """The files stored for ``version``, by name."""
    rows = session.exec(select(ModelArtifact).where(ModelArtifact.version == version))
    return {row.name: row.data for row in rows}


def artifact_versions(*, session: Session) -> set[str]:
    return set(session.exec(select(ModelArtifact.version).distinct()))


def alias_moves(*, session: Session, alias: str = CHAMPION) -> list[AliasMove]:
    return list(session.exec(select(AliasMove).where(AliasMove.alias == alias).order_by(AliasMove.id)))


def alias_target(*, session: Session, alias: str = CHAMPION) -> str | None:
    statement = select(AliasMove.to_version).where(AliasMove.alias == alias).order_by(AliasMove.id.desc())
    return session.exec(statement).first()


# --- drift ----------------------------------------------------------------------------------------
def latest_trained_model(*, session: Session) -> ModelVersion | None:
    """The newest model trained on a dataset version (version 0 of each backbone has none)."""
    statement = (
        select(ModelVersion).where(ModelVersion.dataset_version.is_not(None)).order_by(ModelVersion.id.desc())
    )
    return session.exec(statement).first()


def count_answers_after(label_id: int, sources: Iterable[str], *, session: Session) -> int:
    """Labels after ``label_id`` from ``sources`` that say something (not "skip")."""
    statement = select(func.count(Label.id)).where(
        Label.id > label_id, Label.source.in_(list(sources)), Label.breed != SKIP
    )
    return session.exec(statement).one()


def photos_named_by_breed(sources: Iterable[str], *, session: Session) -> dict[str, tuple[int, int]]:
    """breed -> (photos labelled that breed by ``sources``, the newest such label's id)."""
    statement = (
        select(Label.breed, func.count(func.distinct(Label.photo_id)), func.max(Label.id))
        .where(Label.source.in_(list(sources)))
        .group_by(Label.breed)
    )
    return {breed: (photos, newest) for breed, photos, newest in session.exec(statement)}


def drift_reports(*, session: Session, limit: int = 10) -> list[DriftReport]:
    return list(session.exec(select(DriftReport).order_by(DriftReport.id.desc()).limit(limit)))


def scheduled_drift_reports(*, session: Session, up_to_id: int, limit: int) -> list[DriftReport]:
    """The newest scheduled drift checks up to report ``up_to_id``, newest first."""
    statement = (
        select(DriftReport)
        .where(DriftReport.trigger == "schedule", DriftReport.id <= up_to_id)
        .order_by(DriftReport.id.desc())
        .limit(limit)
    )
    return list(session.exec(statement))


# --- drift incidents ------------------------------------------------------------------------------
def incident(incident_id: int, *, session: Session) -> DriftIncident | None:
    return session.get(DriftIncident, incident_id)


def open_incident(*, session: Session) -> DriftIncident | None:
    """The incident still open (there is at most one: alarms fold into it)."""
    return session.exec(
        select(DriftIncident).where(DriftIncident.closed_at.is_(None)).order_by(DriftIncident.id.desc())
    ).first()


def last_incident(*, session: Session) -> DriftIncident | None:
    """The newest incident."""
    return session.exec(select(DriftIncident).order_by(DriftIncident.id.desc())).first()


def last_closed_incident(*, session: Session) -> DriftIncident | None:
    """The incident closed last (by a promotion or an admin's "Expected")."""
    statement = (
        select(DriftIncident)
        .where(DriftIncident.closed_at.is_not(None))
        .order_by(DriftIncident.closed_at.desc(), DriftIncident.id.desc())
    )
    return session.exec(statement).first()


def incidents_after(incident_id: int, *, session: Session, limit: int = 20) -> list[DriftIncident]:
    """Incidents opened after ``incident_id``, oldest first."""
    return list(
        session.exec(
            select(DriftIncident)
            .where(DriftIncident.id > incident_id)
            .order_by(DriftIncident.id)
            .limit(limit)
        )
    )


# --- job runs -------------------------------------------------------------------------------------
def last_run(job: str, *, session: Session, status: str | Iterable[str] | None = None) -> JobRun | None:
    statement = select(JobRun).where(JobRun.job == job)
    if isinstance(status, str):
        statement = statement.where(JobRun.status == status)
    elif status is not None:
        statement = statement.where(JobRun.status.in_(list(status)))
    return session.exec(statement.order_by(JobRun.id.desc())).first()


def running_jobs(*, session: Session) -> list[JobRun]:
    return list(session.exec(select(JobRun).where(JobRun.status == RunStatus.RUNNING).order_by(JobRun.id)))


# --- locks ----------------------------------------------------------------------------------------
def try_lock(name: str, owner: str, *, now: datetime, expires_at: datetime, session: Session) -> bool:
    """Take the lease ``name`` if it is free, expired or already ours. Commits.

    Either one conditional UPDATE (the row exists) or one INSERT (it does not) decides it; the
    database makes each atomic, so two workers racing for the lease cannot both win.
    """
    taken = session.exec(
        update(JobLock)
        .where(JobLock.name == name, (JobLock.expires_at < now) | (JobLock.owner == owner))
        .values(owner=owner, acquired_at=now, expires_at=expires_at)
    )
    if taken.rowcount == 1:
        session.commit()
        return True
    try:
        session.exec(insert(JobLock).values(name=name, owner=owner, acquired_at=now, expires_at=expires_at))
        session.commit()
        return True
    except IntegrityError:  # someone holds it (or took it between our UPDATE and INSERT)
        session.rollback()
        return False


def take_over_lock(
    name: str, holder: str, owner: str, *, now: datetime, expires_at: datetime, session: Session
) -> bool:
    """Take the lease from ``holder`` (known to be dead), unless someone else did first. Commits."""
    taken = session.exec(
        update(JobLock)
        .where(JobLock.name == name, JobLock.owner == holder)
        .values(owner=owner, acquired_at=now, expires_at=expires_at)
    )
    session.commit()
    return taken.rowcount == 1


def renew_lock(name: str, owner: str, *, expires_at: datetime, session: Session) -> bool:
    renewed = session.exec(
        update(JobLock).where(JobLock.name == name, JobLock.owner == owner).values(expires_at=expires_at)
    )
    session.commit()
    return renewed.rowcount == 1


def release_lock(name: str, owner: str, *, session: Session) -> None:
    session.exec(delete(JobLock).where(JobLock.name == name, JobLock.owner == owner))
    session.commit()


def lock_holder(name: str, *, session: Session) -> JobLock | None:
    return session.get(JobLock, name)
