"""A database lease, so that two workers never train at once and a dead worker never blocks forever.

The lease has an owner and an expiry. Taking it is one atomic UPDATE (free, expired or ours) or one
INSERT (no row yet); a worker killed mid-training simply stops renewing, and the next run takes the
expired lease. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.tables import utcnow

TRAIN_LOCK = "train"


class LockBusy(RuntimeError):
    """Another process holds the lease."""


def make_owner() -> str:
    """A name that tells an operator which process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A held lease; :meth:`renew` pushes its expiry on during long work."""

    def __init__(
        self, engine: Engine, name: str, owner: str, ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.engine, self.name, self.owner, self.ttl, self.clock = engine, name, owner, ttl, clock

    def renew(self) -> bool:
        with open_session(self.engine) as session:
            return repo.renew_lock(self.name, self.owner, expires_at=self.clock() + self.ttl, session=session)


def try_acquire(
    engine: Engine,
    name: str,
    owner: str,
    *,
    ttl: timedelta,
    clock: Callable[[], datetime] = utcnow,
) -> Lease | None:
    now = clock()
    with open_session(engine) as session:
        if repo.try_lock(name, owner, now=now, expires_at=now + ttl, session=session):
            return Lease(engine, name, owner, ttl, clock)
    return None


def release(engine: Engine, name: str, owner: str) -> None:
    with open_session(engine) as session:
        repo.release_lock(name, owner, session=session)


@contextmanager
def held(
    engine: Engine,
    name: str,
    *,
    ttl: timedelta,
    owner: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Iterator[Lease]:
    """Hold the lease for the ``with`` block or raise :class:`LockBusy` at once."""
    owner = owner or make_owner()
    lease = try_acquire(engine, name, owner, ttl=ttl, clock=clock)
    if lease is None:
        with open_session(engine) as session:
            holder = repo.lock_holder(name, session=session)
        who = f"{holder.owner} until {holder.expires_at:%Y-%m-%d %H:%M} UTC" if holder else "another process"
        raise LockBusy(f"{name} is already running ({who})")
    try:
        yield lease
    finally:
        release(engine, name, owner)
