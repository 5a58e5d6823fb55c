"""Web API clients: the apps, websites and kiosks that use the catalog through ``dogbot api``.

An admin makes a token for each client (``dogbot api-token create NAME``, or ``/apitoken NAME`` in
the chat) and hands it over once: only its SHA-256 is stored, so a stolen database gives no working
token. A client acts as one person for the label rules: its labels have source ``api``, its name,
and the user id minus its token's id (never a Telegram user id, which is positive). Revoking keeps
the row, so the labels it gave keep their name.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage import token_repository
from storage.db import session as open_session
from storage.tables import ApiToken, utcnow

# Letters, digits, dot, dash, underscore: a name that reads the same in a URL, a log and a CSV.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Tokens carry a prefix so that a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "dogbot_"


class ClientError(ValueError):
    """A token name that cannot be used, or one that does not exist: ``code`` (bad_name, taken,
    unknown) for the layer that words it in the reader's language; the message is the CLI's English."""

    def __init__(self, message: str, code: str, name: str = "") -> None:
        super().__init__(message)
        self.code, self.name = code, name


@dataclass(frozen=True)
class ApiClient:
    """Who is calling: the token's row id and name. ``user_id`` is what its labels carry."""

    token_id: int
    name: str

    @property
    def user_id(self) -> int:
        return -self.token_id


@dataclass(frozen=True)
class ClientInfo:
    name: str
    created_at: datetime
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClients:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, name: str, *, by: int | None = None) -> str:
        """A new token for client ``name``; returns the token, which is shown this once only."""
        name = name.strip()
        if not _NAME.match(name):
            raise ClientError(
                "a token name is 1-64 letters, digits, dots, dashes or underscores, e.g. intake-app",
                "bad_name",
                name,
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with open_session(self.engine) as session:
            session.add(
                ApiToken(name=name, token_sha256=digest(token), created_at=self.clock(), created_by=by)
            )
            try:
                session.commit()
            except IntegrityError:
                raise ClientError(
                    f"a token named {name} exists already; choose another name", "taken", name
                ) from None
        return token

    def revoke(self, name: str) -> None:
        with open_session(self.engine) as session:
            row = token_repository.token_by_name(name.strip(), session=session)
            if row is None:
                raise ClientError(f"no token is named {name}", "unknown", name)
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                session.add(row)
                session.commit()

    def discard(self, name: str) -> None:
        """Delete a token nobody has received (its message could not be delivered): the name is free again."""
        with open_session(self.engine) as session:
            row = token_repository.token_by_name(name.strip(), session=session)
            if row is not None:
                session.delete(row)
                session.commit()

    def list(self) -> list[ClientInfo]:
        with open_session(self.engine) as session:
            return [
                ClientInfo(row.name, row.created_at, row.revoked_at)
                for row in token_repository.tokens(session=session)
            ]

    def authenticate(self, token: str) -> ApiClient | None:
        """The client holding ``token``; None for an unknown or revoked one. One indexed lookup."""
        with open_session(self.engine) as session:
            row = token_repository.token_by_digest(digest(token), session=session)
        if row is None or row.revoked_at is not None:
            return None
        return ApiClient(row.id, row.name)
