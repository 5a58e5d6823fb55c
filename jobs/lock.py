"""A database lease, so that two workers never train at once and a dead worker never blocks for long.

The lease has an owner and an expiry. Taking it is one atomic UPDATE (free, expired or ours) or one
INSERT (no row yet). While a ``held`` block runs, a background thread renews the lease every quarter
of its time to live, so the time to live can be short (minutes): a holder that stops renewing (killed,
hung, its machine gone) loses the lease soon after. A holder on this machine whose process is gone
is taken over at once. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.tables import utcnow

log = logging.getLogger(__name__)

TRAIN_LOCK = "train"


class LockBusy(RuntimeError):
    """Another process holds the lease."""


def make_owner() -> str:
    """A name that tells an operator which process holds a lease: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` (from :func:`make_owner`) names a process of this machine that has ended.

    Only this machine's processes can be checked; for others (or a name in another form) False.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return host == socket.gethostname() and pid_text.isdigit() and process_is_gone(int(pid_text))


def process_is_gone(pid: int) -> bool:
    """True when no process of this machine has id ``pid``."""
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


class Lease:
    """A held lease; :meth:`renew` pushes its expiry on during long work (``held`` does it for you)."""

    def __init__(
        self, engine: Engine, name: str, owner: str, ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.engine, self.name, self.owner, self.ttl, self.clock = engine, name, owner, ttl, clock
        # Renewals count real time from the moment the lease was taken on the caller's clock, which
        # may be a fixed "now" (jobs run at a given time, the simulation's days).
        self.acquired_at, self._started = clock(), time.monotonic()

    def renew(self) -> bool:
        elapsed = timedelta(seconds=time.monotonic() - self._started)
        with open_session(self.engine) as session:
            return repo.renew_lock(
                self.name, self.owner, expires_at=self.acquired_at + elapsed + self.ttl, session=session
            )


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
        # A holder killed mid-work on this machine: waiting out its time to live would help nobody.
        holder = repo.lock_holder(name, session=session)
        dead = holder.owner if holder is not None and owner_is_gone(holder.owner) else None
        if dead and repo.take_over_lock(name, dead, owner, now=now, expires_at=now + ttl, session=session):
            log.warning("took over the %s lease from %s, whose process is gone", name, dead)
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
    stop = threading.Event()
    heartbeat = threading.Thread(
        target=_keep_renewing, args=(lease, stop), name=f"dogbot:lease-{name}", daemon=True
    )
    heartbeat.start()
    try:
        yield lease
    finally:
        stop.set()
        heartbeat.join()
        release(engine, name, owner)


def _keep_renewing(lease: Lease, stop: threading.Event) -> None:
    every = max(lease.ttl.total_seconds() / 4, 0.05)
    while not stop.wait(every):
        try:
            if not lease.renew():
                log.error("the %s lease was taken over while %s held it", lease.name, lease.owner)
                return
        except Exception:  # the database briefly away: the next beat tries again, well within the TTL
            log.warning("could not renew the %s lease", lease.name, exc_info=True)
