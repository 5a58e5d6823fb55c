"""A per-user sliding-window limit, so one account cannot flood the classifier."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class PerUserLimit:
    """At most ``limit`` events per user in any ``window_s`` seconds (0 or less: no limit)."""

    def __init__(
        self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events: dict[int, deque[float]] = {}

    def allow(self, user_id: int) -> bool:
        """Count one event for ``user_id``; False (and not counted) when over the limit."""
        if self.limit <= 0:
            return True
        now = self.clock()
        events = self._events.setdefault(user_id, deque())
        while events and now - events[0] >= self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True
