"""The training lease: one holder at a time, taken over once expired, safe under racing threads."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from jobs.lock import LockBusy, held, try_acquire
from storage.db import make_engine

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    yield engine
    engine.dispose()


def test_one_holder_until_it_expires(engine):
    ttl = timedelta(minutes=30)
    assert try_acquire(engine, "train", "a", ttl=ttl, clock=lambda: T0) is not None
    assert try_acquire(engine, "train", "b", ttl=ttl, clock=lambda: T0 + timedelta(minutes=29)) is None
    assert (
        try_acquire(engine, "train", "a", ttl=ttl, clock=lambda: T0 + timedelta(minutes=1)) is not None
    )  # re-entry
    # "a" died without releasing: after the expiry "b" takes over.
    assert try_acquire(engine, "train", "b", ttl=ttl, clock=lambda: T0 + timedelta(minutes=32)) is not None


def test_held_releases_on_exit_and_refuses_while_taken(engine):
    ttl = timedelta(minutes=5)
    with (
        held(engine, "train", ttl=ttl, owner="a", clock=lambda: T0),
        pytest.raises(LockBusy, match="already running"),
        held(engine, "train", ttl=ttl, owner="b", clock=lambda: T0),
    ):
        pass
    with held(engine, "train", ttl=ttl, owner="b", clock=lambda: T0):
        pass


def test_racing_threads_get_exactly_one_lease(engine):
    winners, barrier = [], threading.Barrier(8)

    def race(owner: str) -> None:
        barrier.wait()
        if try_acquire(engine, "train", owner, ttl=timedelta(minutes=5), clock=lambda: T0) is not None:
            winners.append(owner)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
