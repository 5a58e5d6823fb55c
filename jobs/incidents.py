"""Drift incidents: one message to admins per shift in the photos, not one per day it lasts.

The drift check runs daily and, once the photos have changed, alarms every day until a model that
learned the new photos serves (in the 30-day simulation: every day from 21 to 30). The first
scheduled alarm after the champion last changed opens an incident and is told to admins; later
alarms fold into it until the champion changes again (a promotion of a model trained on photos
from after the shift, or a rollback), after which an alarm opens a new one. Not built yet: the
admin's "Expected, use these photos as the new normal" button that closes an incident, the daily
digest line, and telling new breeds apart from other alarms (issue 11, part 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from storage.lifecycle_tables import DriftReport


def _utc(moment: datetime) -> datetime:
    return (
        moment.replace(tzinfo=None)
        if moment.tzinfo is None
        else moment.replace(tzinfo=None) - moment.utcoffset()
    )


def incident_openers(reports: Iterable[DriftReport], champion_changes: Sequence[datetime]) -> set[int]:
    """Ids of the scheduled alarms that open an incident, among ``reports`` (all that matter:
    every alarm since the champion last changed)."""
    changes = sorted(_utc(moment) for moment in champion_changes)
    openers: set[int] = set()
    open_since: datetime | None = None  # the champion change the open incident belongs after
    incident_open = False
    for report in sorted(reports, key=lambda r: r.id):
        if not (report.drift and report.trigger == "schedule"):
            continue
        at = _utc(report.created_at)
        # A change stamped with the report's own moment came after it (the daily tick checks drift,
        # then retrains, on one clock reading).
        last_change = max((c for c in changes if c < at), default=None)
        if not incident_open or last_change != open_since:
            openers.add(report.id)
            incident_open, open_since = True, last_change
    return openers
