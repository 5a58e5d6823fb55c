"""The training lease: one holder at a time, taken over once expired, safe under racing threads."""

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from jobs.lock import LockBusy, held, make_owner, owner_is_gone, try_acquire
from storage.db import make_engine
from storage.tables import utcnow

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


def test_a_held_lease_is_renewed_while_its_work_runs(engine):
    """A short time to live is safe: the holder renews while it works, and only then is it free."""
    ttl = timedelta(seconds=0.4)
    with held(engine, "train", ttl=ttl, owner="a"):
        time.sleep(1.2)  # three times the time to live
        assert try_acquire(engine, "train", "b", ttl=ttl) is None
    assert try_acquire(engine, "train", "b", ttl=ttl) is not None


def test_a_lease_whose_holder_process_is_gone_is_taken_over_at_once(database_url):
    """A worker killed mid-training on this machine: its 30-minute lease does not block the next run."""
    engine = make_engine(database_url)
    holder = (
        "import os, sys; from datetime import timedelta; from jobs.lock import make_owner, try_acquire;"
        "from storage.db import make_engine;"
        "lease = try_acquire(make_engine(sys.argv[1]), 'train', make_owner(), ttl=timedelta(minutes=30));"
        "print(lease.owner, flush=True); os._exit(0)"  # killed: no release
    )
    done = subprocess.run(
        [sys.executable, "-c", holder, database_url], capture_output=True, text=True, timeout=120
    )
    dead = done.stdout.strip()
    assert dead and owner_is_gone(dead), done.stderr
    assert try_acquire(engine, "train", "next-run", ttl=timedelta(minutes=30), clock=utcnow) is not None
    assert try_acquire(engine, "train", "a-third", ttl=timedelta(minutes=30), clock=utcnow) is None
    engine.dispose()


def test_only_this_machines_ended_processes_count_as_gone():
    assert not owner_is_gone(make_owner())  # this process
    assert not owner_is_gone(f"some-other-host:{os.getpid() + 10**6}:abcd1234")
    assert not owner_is_gone("a")  # a name in another form (tests, operators)
