"""Data access for the Animal Shelter Manager outbox (``AsmSend``) and people's names (``PersonName``).

Each function takes the session as a keyword argument; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.tables import AsmSend, PersonName
from storage.vocabulary import ASM_OPEN_STATES, AsmState


def latest_by_code(states: Iterable[str], *, session: Session) -> dict[str, AsmSend]:
    """Per dog code, its newest send in one of ``states``."""
    states = list(states)
    newest = (
        select(func.max(AsmSend.id))
        .where(col(AsmSend.state).in_(states))
        .group_by(AsmSend.code)
        .scalar_subquery()
    )
    rows = session.exec(select(AsmSend).where(col(AsmSend.id).in_(newest)))
    return {send.code: send for send in rows}


def delivered(*, session: Session) -> dict[str, AsmSend]:
    """Per dog code, the last row ASM imported: what ASM holds of the dog, as far as dogbot knows."""
    return latest_by_code([AsmState.SENT], session=session)


def open_sends(*, session: Session) -> dict[str, AsmSend]:
    """Per dog code, the send still to be made (waiting, interrupted or refused)."""
    return latest_by_code(ASM_OPEN_STATES, session=session)


def due(now: datetime | None, *, include_failed: bool, session: Session) -> list[AsmSend]:
    """Open sends whose time has come, oldest first: waiting ones past ``next_try_at`` (every one
    when ``now`` is None), interrupted ones, and (when asked) refused ones."""
    states = [AsmState.WAITING, AsmState.SENDING] + ([AsmState.FAILED] if include_failed else [])
    statement = select(AsmSend).where(col(AsmSend.state).in_(states)).order_by(AsmSend.id)
    return [send for send in session.exec(statement) if now is None or not _later(send, now)]


def scheduled(now: datetime, *, session: Session) -> list[AsmSend]:
    """Waiting sends not due yet (in their quiet time, or backing off after an outage)."""
    statement = select(AsmSend).where(AsmSend.state == AsmState.WAITING).order_by(AsmSend.id)
    return [send for send in session.exec(statement) if _later(send, now)]


def _later(send: AsmSend, now: datetime) -> bool:
    if send.state != AsmState.WAITING or send.next_try_at is None:
        return False
    next_try = send.next_try_at if send.next_try_at.tzinfo else send.next_try_at.replace(tzinfo=now.tzinfo)
    return next_try > now


def sends_of(code: str, *, session: Session) -> list[AsmSend]:
    return list(session.exec(select(AsmSend).where(AsmSend.code == code).order_by(AsmSend.id)))


def count_by_state(*, session: Session) -> dict[str, int]:
    statement = select(AsmSend.state, func.count()).group_by(AsmSend.state)
    return {state: count for state, count in session.exec(statement)}


def person_name(user_id: int, *, session: Session) -> str | None:
    row = session.get(PersonName, user_id)
    return row.name if row is not None else None


def all_person_names(*, session: Session) -> dict[int, str]:
    return {row.user_id: row.name for row in session.exec(select(PersonName))}


def remember_name(user_id: int, name: str, now: datetime, *, session: Session) -> None:
    row = session.get(PersonName, user_id)
    if row is None:
        row = PersonName(user_id=user_id, name=name, updated_at=now)
    else:
        row.name, row.updated_at = name, now
    session.add(row)
