"""Data-access functions. Each takes the session as a keyword argument; callers own transactions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import case, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.tables import (
    CustomBreed,
    Label,
    LanguageChoice,
    Member,
    Photo,
    Prediction,
    PressOrder,
    RateWindow,
    utcnow,
)
from storage.vocabulary import SKIP

# Ids per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters, so a query
# about a whole catalog is a few hundred small index lookups, never one statement the driver refuses.
IN_LIST_CHUNK = 500


def chunked(ids: Iterable[int], size: int = IN_LIST_CHUNK) -> Iterator[list[int]]:
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def photo_by_sha(sha256: str, *, session: Session) -> Photo | None:
    return session.exec(select(Photo).where(Photo.sha256 == sha256)).first()


def latest_prediction(photo_id: int, *, session: Session) -> Prediction | None:
    statement = (
        select(Prediction)
        .where(Prediction.photo_id == photo_id)
        .order_by(Prediction.created_at.desc(), Prediction.id.desc())
    )
    return session.exec(statement).first()


def prediction_by_model(photo_id: int, model_version: str, *, session: Session) -> Prediction | None:
    """What ``model_version`` said about the photo (there is at most one such prediction)."""
    statement = select(Prediction).where(
        Prediction.photo_id == photo_id, Prediction.model_version == model_version
    )
    return session.exec(statement).first()


def press_order_for_update(user_id: int, subject: str, *, session: Session) -> PressOrder:
    """The row ordering this person's presses on ``subject``, made if missing; on PostgreSQL it stays
    locked until the session commits, so a second replica's press on it waits for this one."""
    for _ in range(3):
        row = session.get(PressOrder, (user_id, subject), with_for_update=True)
        if row is not None:
            return row
        try:
            row = PressOrder(user_id=user_id, subject=subject, update_id=-1)
            session.add(row)
            session.flush()
            return row
        except IntegrityError:  # another replica made it meanwhile: take (and lock) theirs
            session.rollback()
    raise RuntimeError(f"press order of {user_id} on {subject} could not be read")


def labels_of(photo_id: int, *, session: Session) -> list[Label]:
    statement = select(Label).where(Label.photo_id == photo_id).order_by(Label.created_at, Label.id)
    return list(session.exec(statement))


def labels_by_photo(photo_ids: Iterable[int], *, session: Session) -> dict[int, list[Label]]:
    grouped: dict[int, list[Label]] = {}
    for chunk in chunked(photo_ids):
        statement = select(Label).where(Label.photo_id.in_(chunk)).order_by(Label.created_at, Label.id)
        for label in session.exec(statement):
            grouped.setdefault(label.photo_id, []).append(label)
    return grouped


def latest_prediction_ids(photo_ids: Iterable[int], *, session: Session) -> dict[int, int]:
    """The id of each photo's newest prediction, without reading any prediction row.

    ``max(id) ... WHERE photo_id IN (...) GROUP BY photo_id`` is answered from the photo_id index, so
    its cost follows the number of photos asked about, not the size of the catalog.
    """
    found: dict[int, int] = {}
    for chunk in chunked(photo_ids):
        statement = (
            select(Prediction.photo_id, func.max(Prediction.id))
            .where(Prediction.photo_id.in_(chunk))
            .group_by(Prediction.photo_id)
        )
        found.update((photo_id, prediction_id) for photo_id, prediction_id in session.exec(statement))
    return found


def latest_predictions(photo_ids: Iterable[int] | None = None, *, session: Session) -> dict[int, Prediction]:
    """The newest prediction of each photo (of all photos when ``photo_ids`` is None)."""
    if photo_ids is None:  # everything: one pass over the table is the least it can cost
        newest = (
            select(Prediction.photo_id, func.max(Prediction.id).label("prediction_id"))
            .group_by(Prediction.photo_id)
            .subquery()
        )
        statement = select(Prediction).join(newest, Prediction.id == newest.c.prediction_id)
        return {prediction.photo_id: prediction for prediction in session.exec(statement)}
    found: dict[int, Prediction] = {}
    for chunk in chunked(latest_prediction_ids(photo_ids, session=session).values()):
        for prediction in session.exec(select(Prediction).where(Prediction.id.in_(chunk))):
            found[prediction.photo_id] = prediction
    return found


def photos_awaiting_label(*, session: Session, after_id: int = 0, limit: int = 1) -> list[Photo]:
    """Photos with no answer yet except "skip", oldest first, starting after ``after_id``."""
    answered = select(Label.photo_id).where(Label.breed != SKIP)
    statement = (
        select(Photo)
        .where(Photo.id > after_id, Photo.id.not_in(answered))
        .order_by(Photo.received_at, Photo.id)
        .limit(limit)
    )
    return list(session.exec(statement))


def count_awaiting_label(*, session: Session) -> int:
    answered = select(Label.photo_id).where(Label.breed != SKIP)
    return session.exec(select(func.count(Photo.id)).where(Photo.id.not_in(answered))).one()


def count_photos(*, session: Session, since: datetime | None = None) -> int:
    statement = select(func.count(Photo.id))
    if since is not None:
        statement = statement.where(Photo.received_at >= since)
    return session.exec(statement).one()


def photo_ids(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> list[int]:
    """Every photo's id, or those received in ``[since, until)``."""
    statement = select(Photo.id)
    if since is not None:
        statement = statement.where(Photo.received_at >= since)
    if until is not None:
        statement = statement.where(Photo.received_at < until)
    return list(session.exec(statement))


def photos(*, session: Session) -> list[Photo]:
    """Every photo, oldest first."""
    return list(session.exec(select(Photo).order_by(Photo.id)))


def photo_digests(*, session: Session) -> list[str]:
    """Every photo's SHA-256, oldest first."""
    return list(session.exec(select(Photo.sha256).order_by(Photo.id)))


def count_answers(*, session: Session) -> int:
    """Labels that say something (every label but "skip")."""
    return session.exec(select(func.count(Label.id)).where(Label.breed != SKIP)).one()


def photo_ids_labelled_by(
    sources: Iterable[str], *, session: Session, since: datetime | None = None
) -> list[int]:
    """Photos with a label from one of ``sources`` (since ``since``), by id."""
    statement = select(Label.photo_id).where(Label.source.in_(list(sources)))
    if since is not None:
        statement = statement.where(Label.created_at >= since)
    return sorted(set(session.exec(statement)))


def latest_corrections(
    sources: Iterable[str], *, since: datetime, session: Session
) -> dict[int, tuple[str, str]]:
    """photo id -> (the breed the model said, the breed the photo's latest label from ``sources`` names)."""
    statement = (
        select(Label.photo_id, Prediction.breed, Label.breed)
        .join(Prediction, Label.prediction_id == Prediction.id)
        .where(Label.source.in_(list(sources)), Label.created_at >= since, Prediction.breed.is_not(None))
        .order_by(Label.id)
    )
    return {photo_id: (shown, named) for photo_id, shown, named in session.exec(statement)}


def labelled_embeddings(
    sources: Iterable[str], *, since: datetime, session: Session
) -> dict[int, tuple[str, bytes, str]]:
    """photo id -> (the breed its latest label from ``sources`` names, the embedding and model
    version of the prediction that label answered)."""
    statement = (
        select(Label.photo_id, Label.breed, Prediction.embedding, Prediction.model_version)
        .join(Prediction, Label.prediction_id == Prediction.id)
        .where(Label.source.in_(list(sources)), Label.created_at >= since)
        .order_by(Label.id)
    )
    return {photo_id: (breed, blob, version) for photo_id, breed, blob, version in session.exec(statement)}


def recent_embeddings(limit: int, *, session: Session) -> list[tuple[bytes, str]]:
    """The embeddings (and model versions) of the newest ``limit`` predictions."""
    statement = (
        select(Prediction.embedding, Prediction.model_version).order_by(Prediction.id.desc()).limit(limit)
    )
    return [(blob, version) for blob, version in session.exec(statement)]


def custom_breeds(*, session: Session) -> list[CustomBreed]:
    return list(session.exec(select(CustomBreed).order_by(CustomBreed.created_at)))


def members(*, session: Session, active_only: bool = True) -> list[Member]:
    statement = select(Member)
    if active_only:
        statement = statement.where(Member.active)
    return list(session.exec(statement))


def set_member(user_id: int, role: str, active: bool, *, by: int | None, session: Session) -> Member:
    member = session.exec(select(Member).where(Member.user_id == user_id)).first()
    if member is None:
        member = Member(user_id=user_id, role=role, active=active, added_by=by)
    else:
        member.role, member.active, member.added_by, member.updated_at = role, active, by, utcnow()
    session.add(member)
    return member


def language_choices(*, session: Session) -> dict[int, str]:
    """user id -> the language they chose with /language (few rows: one per person who chose)."""
    return {row.user_id: row.language for row in session.exec(select(LanguageChoice))}


def set_language_choice(user_id: int, language: str, *, session: Session) -> None:
    row = session.get(LanguageChoice, user_id)
    if row is None:
        row = LanguageChoice(user_id=user_id, language=language)
    else:
        row.language, row.updated_at = language, utcnow()
    session.add(row)


def count_event(kind: str, user_id: int, *, window_start: int, limit: int, session: Session) -> bool:
    """Count one event of ``user_id`` in the window that began at ``window_start``. Commits.

    False, and nothing counted, when ``limit`` events are counted in it already. One conditional UPDATE
    decides (or one INSERT, for the user's first event), atomically in the database, so replicas
    counting the same user at the same moment never let more than ``limit`` through. A counter already
    in a later window (another replica's clock runs ahead) takes the event there.
    """
    older = RateWindow.window_start < window_start
    mine = (RateWindow.kind == kind) & (RateWindow.user_id == user_id)
    for _ in range(3):  # each retry follows another replica's change between two of our statements
        counted = session.exec(
            update(RateWindow)
            .where(mine, older | (RateWindow.events < limit))
            .values(
                window_start=case((older, window_start), else_=RateWindow.window_start),
                events=case((older, 1), else_=RateWindow.events + 1),
            )
        )
        if counted.rowcount == 1:
            session.commit()
            return True
        row = session.get(RateWindow, (kind, user_id), populate_existing=True)
        if row is not None:
            # Read before the rollback, which expires the row (reading it after would query again).
            full = row.window_start >= window_start and row.events >= limit
            session.rollback()
            if full:
                return False
            continue  # another replica made or reset it after our UPDATE looked: look again
        session.add(RateWindow(kind=kind, user_id=user_id, window_start=window_start, events=1))
        try:
            session.commit()
            return True
        except IntegrityError:  # another replica counted this user's first event at the same moment
            session.rollback()
    return False


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    return np.asarray(embedding, dtype="<f4").tobytes()


def embedding_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def stack_embeddings(predictions: Sequence[Prediction]) -> np.ndarray:
    if not predictions:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([embedding_from_bytes(p.embedding) for p in predictions]).astype(np.float32)
