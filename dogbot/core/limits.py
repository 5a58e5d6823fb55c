"""Limits on work: the per-user photo limit shared by bot replicas (one counter per user, in the
database), and the process's full-size decode slots.

``bot.throttle.PerUserLimit`` counts in each process's memory, so behind a load balancer N replicas
would let a user send N times the limit. With ``DOGBOT_SHARED_RATE_LIMIT`` every replica counts in
the same ``RateWindow`` row instead. The window is fixed (it starts every ``window_s`` seconds of the
wall clock, which replicas agree on) rather than sliding, so that one atomic UPDATE decides each
photo; the price is that a burst across a window's end may reach twice the limit once.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

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


class Busy(Exception):
    """Too many requests already wait for a decode slot; ``retry_after_s`` is a fair time to wait."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"busy: retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class DecodeSlots:
    """At most ``slots`` full-size photos decoded at once in this process, and at most ``queue`` more waiting.

    A 100 KB PNG can hold 40 megapixels (120 MB decoded): memory grows with the photos decoded at
    once, not with the requests. Everything that decodes a photo (the bot's intake, every API route)
    holds a slot from the decode until the full-size image is dropped. A caller past the queue gets
    :class:`Busy` at once instead of piling up behind the others.
    """

    def __init__(self, slots: int = 1, *, queue: int | None = None) -> None:
        if slots < 1:
            raise ValueError("at least one decode slot")
        self.slots = slots
        self.queue = queue
        self._free = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._inside = 0  # holding or waiting
        self._hold_s = 1.0  # recent mean time a slot is held: what Retry-After is made of

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            if self.queue is not None and self._inside >= self.slots + self.queue:
                ahead = self._inside / self.slots
                raise Busy(max(1, math.ceil(ahead * self._hold_s)))
            self._inside += 1
        try:
            self._free.acquire()
            started = time.monotonic()
            try:
                yield
            finally:
                self._free.release()
                with self._lock:
                    self._hold_s = 0.8 * self._hold_s + 0.2 * (time.monotonic() - started)
        finally:
            with self._lock:
                self._inside -= 1
