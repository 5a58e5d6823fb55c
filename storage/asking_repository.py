"""Data-access functions for when to ask (dogbot/core/asking.py): what people said about a model's
answers, and its recent answers. Each takes the session as a keyword; rows are plain tuples
``(breed, confidence, second breed, right)``, ``right`` None where nobody said."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.lifecycle_tables import ModelVersion
from storage.repository import chunked
from storage.tables import AccuracyNotice, Label, Prediction
from storage.vocabulary import NOT_A_DOG, PEOPLE, SpecialLabel

AnswerRow = tuple[str, float, str | None, bool | None]


def _second(top: list | None) -> str | None:
    return top[1]["breed"] if top and len(top) > 1 else None


def judged_answers(version: str, *, session: Session) -> list[AnswerRow]:
    """The answers stored with the model when it was trained (its cross-validation candidates', on
    labelled photos they never saw): ``metrics["judged_answers"]``."""
    row = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    stored = (row.metrics or {}).get("judged_answers", []) if row is not None else []
    return [(breed, float(confidence), second, bool(right)) for breed, confidence, second, right in stored]


def people_answers(version: str, *, session: Session) -> list[AnswerRow]:
    """People's answers about ``version``'s breed answers that it asked about or that were spot
    checks; not corrections nobody asked for (chosen because the answer looked wrong), nor answers
    held back for a look-alike (asked because they looked likely wrong). Each photo counts once,
    with its latest answer."""
    statement = (
        select(Prediction.photo_id, Prediction.breed, Prediction.confidence, Prediction.top, Label.breed)
        .join(Label, Label.prediction_id == Prediction.id)
        .where(
            Prediction.model_version == version,
            Prediction.is_dog,
            Prediction.breed.is_not(None),
            ((~Prediction.auto_accepted) & (~Prediction.held_back)) | Prediction.spot_check,
            Label.source.in_(PEOPLE),
            Label.breed != SpecialLabel.SKIP,
        )
        .order_by(Label.created_at, Label.id)
    )
    latest: dict[int, AnswerRow] = {}
    for photo_id, breed, confidence, top, said in session.exec(statement):
        latest[photo_id] = (breed, float(confidence), _second(top), said == breed)
    return list(latest.values())


def recent_answers(version: str, limit: int, *, session: Session) -> list[AnswerRow]:
    """``version``'s newest breed answers, whatever became of them."""
    statement = (
        select(Prediction.breed, Prediction.confidence, Prediction.top)
        .where(Prediction.model_version == version, Prediction.is_dog, Prediction.breed.is_not(None))
        .order_by(Prediction.id.desc())
        .limit(limit)
    )
    return [
        (breed, float(confidence), _second(top), None) for breed, confidence, top in session.exec(statement)
    ]


# What an accepted answer was: (model version, is a dog, breed, confidence, second breed).
AcceptedRow = tuple[str, bool, str | None, float, str | None]


def spot_checks(
    *, session: Session, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[bool, AcceptedRow]]:
    """Spot checks people answered (answers accepted without asking, picked at random and shown to
    staff): whether staff confirmed each, and the answer; by when the model answered the photo."""
    statement = (
        select(
            Prediction.photo_id,
            Prediction.model_version,
            Prediction.is_dog,
            Prediction.breed,
            Prediction.confidence,
            Prediction.top,
            Label.breed,
        )
        .join(Label, Label.prediction_id == Prediction.id)
        .where(Prediction.spot_check, Label.source.in_(PEOPLE), Label.breed != SpecialLabel.SKIP)
        .order_by(Label.created_at, Label.id)
    )
    if since is not None:
        statement = statement.where(Prediction.created_at >= since)
    if until is not None:
        statement = statement.where(Prediction.created_at < until)
    latest: dict[int, tuple[bool, AcceptedRow]] = {}
    for photo_id, version, is_dog, breed, confidence, top, said in session.exec(statement):
        right = said == (breed if is_dog else NOT_A_DOG)
        latest[photo_id] = (right, (version, bool(is_dog), breed, float(confidence), _second(top)))
    return list(latest.values())


def spot_check_results(*, session: Session, since: datetime | None = None, until: datetime | None = None):
    """``(checked, right)``: how many spot checks people answered, and confirmed."""
    checks = spot_checks(session=session, since=since, until=until)
    return len(checks), sum(right for right, _ in checks)


def accepted_answers(prediction_ids: Sequence[int], *, session: Session) -> list[AcceptedRow]:
    """The answers of these predictions (those the catalog filed without asking)."""
    rows = []
    for chunk in chunked(prediction_ids):
        statement = select(
            Prediction.model_version,
            Prediction.is_dog,
            Prediction.breed,
            Prediction.confidence,
            Prediction.top,
        ).where(Prediction.id.in_(chunk))
        for version, is_dog, breed, confidence, top in session.exec(statement):
            rows.append((version, bool(is_dog), breed, float(confidence), _second(top)))
    return rows


VerdictRow = tuple[str, float, str | None, str]


def people_verdicts(*, session: Session, since: datetime | None = None) -> list[VerdictRow]:
    """``(model's breed, its confidence, its second breed, what people said)`` for each photo whose
    breed answer (any model's) people labelled, since ``since``: each photo once, with its latest
    answer; skips left out. Every people's answer counts here, corrections nobody asked for too:
    this is where the model is wrong, not how often."""
    statement = (
        select(Prediction.photo_id, Prediction.breed, Prediction.confidence, Prediction.top, Label.breed)
        .join(Label, Label.prediction_id == Prediction.id)
        .where(
            Prediction.is_dog,
            Prediction.breed.is_not(None),
            Label.source.in_(PEOPLE),
            Label.breed != SpecialLabel.SKIP,
        )
        .order_by(Label.created_at, Label.id)
    )
    if since is not None:
        statement = statement.where(Label.created_at >= since)
    latest: dict[int, VerdictRow] = {}
    for photo_id, breed, confidence, top, said in session.exec(statement):
        latest[photo_id] = (breed, float(confidence), _second(top), said)
    return list(latest.values())


def mark_strict(strict: bool, *, session: Session, now: datetime, name: str = "catalog") -> bool:
    """Record whether the rule is strict; True only for the one call (of any process) that turned
    it strict, which tells admins. A conditional update, so two replicas never both turn it."""
    if session.get(AccuracyNotice, name) is None:
        try:
            with session.begin_nested():
                session.add(AccuracyNotice(name=name, strict=False, changed_at=now))
        except IntegrityError:  # another replica made it first
            pass
    changed = session.exec(
        update(AccuracyNotice)
        .where(AccuracyNotice.name == name, AccuracyNotice.strict == (not strict))
        .values(strict=strict, changed_at=now)
    ).rowcount
    session.commit()
    return strict and changed == 1
