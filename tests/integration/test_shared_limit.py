"""The photo limit bot replicas share through the database, on SQLite and PostgreSQL.

Each "replica" is a limiter with its own engine (its own connections) on the same database.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dogbot.core.limits import SharedPerUserLimit
from storage.db import make_engine


@pytest.fixture
def replicas(database_url):
    """Engines of two processes sharing one database."""
    engines = [make_engine(database_url) for _ in range(2)]
    yield engines
    for engine in engines:
        engine.dispose()


def test_two_replicas_share_one_limit_per_user(replicas):
    now = [1_000_000.0]
    first, second = (SharedPerUserLimit(engine, 3, 60, clock=lambda: now[0]) for engine in replicas)
    # Alternating replicas, as a round-robin load balancer sends them: three in all, not three each.
    allowed = [limit.allow(7) for limit in (first, second, first, second, first)]
    assert allowed == [True, True, True, False, False]
    assert second.allow(8) and first.allow(8)  # everyone has their own count
    now[0] += 60  # the next window
    assert [second.allow(7) for _ in range(4)] == [True, True, True, False]
    assert SharedPerUserLimit(replicas[0], 0).allow(7)  # 0: no limit


def test_a_replica_whose_clock_lags_counts_in_the_newer_window(replicas):
    ahead = SharedPerUserLimit(replicas[0], 2, 60, clock=lambda: 1_000_020.0)
    behind = SharedPerUserLimit(replicas[1], 2, 60, clock=lambda: 999_990.0)  # still in the window before
    assert ahead.allow(7) and behind.allow(7)
    assert not behind.allow(7) and not ahead.allow(7)


def test_replicas_racing_for_the_same_user_never_let_more_through(replicas):
    limits = [SharedPerUserLimit(engine, 10, 60, clock=lambda: 2_000_000.0) for engine in replicas]
    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(lambda i: limits[i % 2].allow(42), range(40)))
    assert sum(allowed) == 10


def test_a_users_first_photos_reaching_both_replicas_at_once_are_both_counted(replicas):
    limits = [SharedPerUserLimit(engine, 5, 60, clock=lambda: 3_000_000.0) for engine in replicas]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for user in range(40):
            start = threading.Barrier(2)

            def allow(limit, user=user, start=start) -> bool:
                start.wait()
                return limit.allow(user)

            assert list(pool.map(allow, limits)) == [True, True], f"user {user}"
