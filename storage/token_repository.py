"""Data access for web API tokens (``ApiToken``). Each function takes the session as a keyword argument."""

from __future__ import annotations

from sqlmodel import Session, select

from storage.tables import ApiToken


def token_by_digest(token_sha256: str, *, session: Session) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.token_sha256 == token_sha256)).first()


def token_by_name(name: str, *, session: Session) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.name == name)).first()


def tokens(*, session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(ApiToken.id)))
