"""The per-user photo limit shared by bot replicas: one counter per user, in the database.

``bot.throttle.PerUserLimit`` counts in each process's memory, so behind a load balancer N replicas
would let a user send N times the limit. With ``DOGBOT_SHARED_RATE_LIMIT`` every replica counts in
the same ``RateWindow`` row instead. The window is fixed (it starts every ``window_s`` seconds of the
wall clock, which replicas agree on) rather than sliding, so that one atomic UPDATE decides each
photo; the price is that a burst across a window's end may reach twice the limit once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from storage import repository
from storage.db import session as open_session


class SharedPerUserLimit:
    """At most ``limit`` events per user in each ``window_s`` window, counted in the database (0: no limit).

    ``allow`` does one database round trip: call it from a worker thread, not the event loop.
    """

    def __init__(
        self,
        engine: Engine,
        limit: int,
        window_s: float = 60.0,
        *,
        kind: str = "photo",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.window_s = window_s
        self.kind = kind
        self.clock = clock

    def allow(self, user_id: int) -> bool:
        """Count one event for ``user_id``; False (and not counted) when over the limit."""
        if self.limit <= 0:
            return True
        window_start = int(math.floor(self.clock() / self.window_s) * self.window_s)
        with open_session(self.engine) as session:
            return repository.count_event(
                self.kind, user_id, window_start=window_start, limit=self.limit, session=session
            )
