"""The shelter's clock (``DOGBOT_TIMEZONE``): the catalog keeps UTC, people read their own time."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def on_clock(moment: datetime, tz: tzinfo) -> datetime:
    """``moment`` on the clock ``tz`` (a naive one, as SQLite returns them, is UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz)


def local_iso(moment: datetime, tz: tzinfo) -> str:
    """``2026-12-31T23:30:00-08:00``: the shelter's time with its offset, never ambiguous."""
    return on_clock(moment, tz).isoformat(timespec="seconds")
