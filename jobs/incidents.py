"""Drift incidents: one message to admins per shift in the photos, not one per day it lasts.

The drift check runs daily and, once the photos have changed, alarms every day until a model that
learned the new photos serves (in the 30-day simulation: every day from 21 to 30). The first
scheduled alarm opens an incident (a ``DriftIncident`` row: the one message admins get, with what
changed, since when, how many photos, two examples and whether the answers suffered); while it is
open, later alarms fold into it. It closes when a model trained on photos from after it opened is
promoted, or when an admin says the photos are expected ("use these photos as the new normal").
Either way the shift is the new normal: the photos since the change began (the incident's estimate,
``jobs.service``) become the drift reference (``new_normal``), and detection compares
with them, only photos received since, until the next incident closes. (A promoted model's own
training photos, the reference otherwise, are mostly from before the shift, and a window of the
newest photos mixes both sides of it: compared either way the same shift alarmed again two days
later, a second message about one change.)
Manual checks (/drift, ``dogbot drift``) never open one, and a
lone scheduled alarm does not either: an incident opens when ``after_alarms`` checks in a row
alarmed (a real shift alarms every day until a model learns it; on unchanged photos a rare
chance alarm came and went the next day).

Breeds the serving model has no row for arriving is told as that, not as a statistical alarm:
when labels in the window name such breeds and neither brightness nor size moved, the incident's
kind is ``new_breeds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
from scipy import stats
from sqlalchemy.engine import Engine

from jobs.windows import Window
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.lifecycle_tables import DriftIncident
from storage.vocabulary import SPECIAL_LABELS, DriftTest, IncidentClose, IncidentKind

# Changes in what the model is shown, as opposed to what it answers: these make an alarm a shift
# even when new breeds arrived in the same window.
_PHOTO_TESTS = (DriftTest.BRIGHTNESS, DriftTest.SIZE)
# Fewer recent answers checked by staff than this: "too few checked answers to tell".
MIN_CHECKED = 10
# One-sided Fisher p below this: the answers got worse (one comparison per incident, not a family).
WORSE_P = 0.05


class IncidentClosed(Exception):
    """The incident was already closed (by a promotion or another admin)."""


@dataclass(frozen=True)
class AnswerQuality:
    """How often staff (and the audit) changed the model's answers, before and since the shift."""

    checked: int  # recent answers a person checked, that the answering model could have got right
    changed: int
    checked_before: int
    changed_before: int
    p_value: float | None  # one-sided Fisher: changed more often now; None below MIN_CHECKED

    @property
    def worse(self) -> bool | None:
        """True: the answers suffered; False: as good as before; None: too few checked to tell."""
        return None if self.p_value is None else self.p_value < WORSE_P


@dataclass(frozen=True)
class IncidentFacts:
    """What the message to admins says, kept with the incident (``DriftIncident.facts``)."""

    kind: str  # IncidentKind
    changed: list[str]  # the alarming tests
    since: datetime | None  # where the change starts in the recent photos (None: no estimate)
    photos: int  # recent photos from then on
    examples: list[str] = field(default_factory=list)  # sha256 of two of them
    new_breeds: list[str] = field(default_factory=list)  # labelled, and the serving model has no row
    new_breed_photos: int = 0
    brightness: tuple[float, float] | None = None  # median before, median since
    answers: AnswerQuality | None = None
    chart: str | None = None  # the drift chart of the alarm that opened it

    def to_json(self) -> dict:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> IncidentFacts:
        answers = data.get("answers")
        return cls(
            kind=data["kind"],
            changed=list(data.get("changed", [])),
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            photos=int(data.get("photos", 0)),
            examples=list(data.get("examples", [])),
            new_breeds=list(data.get("new_breeds", [])),
            new_breed_photos=int(data.get("new_breed_photos", 0)),
            brightness=tuple(data["brightness"]) if data.get("brightness") else None,
            answers=AnswerQuality(**answers) if answers else None,
            chart=data.get("chart"),
        )


def describe_shift(
    reference: Window, current: Window, alarms: Sequence[str], *, known: set[str], hashes: dict[int, str]
) -> IncidentFacts:
    """The facts an alarm is told with (pure: the windows the drift job compared).

    ``known``: the serving model's breeds; ``hashes``: photo id -> sha256 of the current photos.
    """
    order = np.argsort(np.array([moment.timestamp() for moment in current.received]), kind="stable")
    new_photos = [
        int(i)
        for i in order
        if current.people_label[i] is not None
        and current.people_label[i] not in known
        and current.people_label[i] not in SPECIAL_LABELS
    ]
    new_breeds = sorted({current.people_label[i] for i in new_photos})
    moved_photos = any(name in _PHOTO_TESTS for name in alarms)
    kind = IncidentKind.NEW_BREEDS if new_breeds and not moved_photos else IncidentKind.SHIFT
    start = 0  # position in ``order`` where the change begins
    since = None
    if kind is IncidentKind.NEW_BREEDS:
        start = list(order).index(new_photos[0])
    elif DriftTest.BRIGHTNESS in alarms:
        start = change_point(reference.brightness, current.brightness[order])
    since_positions = [int(i) for i in order[start:]]
    if since_positions and (kind is IncidentKind.NEW_BREEDS or DriftTest.BRIGHTNESS in alarms):
        since = current.received[since_positions[0]]
    brightness = None
    if DriftTest.BRIGHTNESS in alarms:
        brightness = (
            float(np.median(reference.brightness)),
            float(np.median(current.brightness[since_positions])),
        )
    example_positions = new_photos[-2:] if kind is IncidentKind.NEW_BREEDS else since_positions[-2:]
    return IncidentFacts(
        kind=kind,
        changed=list(alarms),
        since=since,
        photos=len(since_positions),
        examples=[hashes[current.photo_ids[i]] for i in example_positions if current.photo_ids[i] in hashes],
        new_breeds=new_breeds,
        new_breed_photos=len(new_photos),
        brightness=brightness,
        answers=answer_quality(reference, current, set(since_positions), known),
    )


def change_point(before: np.ndarray, after: np.ndarray, *, min_segment: int = 5) -> int:
    """Where in ``after`` (time order) its values leave those of ``before``: the split of the
    recent photos that best separates a changed tail from the rest (the single change-point CUSUM
    estimate, with the reference counted as "before"). 0: the whole recent window has changed."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    values = np.concatenate([before, after])
    n = len(values)
    best, best_at = -1.0, 0
    for k in range(len(before), n - min_segment + 1):
        head, tail = values[:k], values[k:]
        if len(head) == 0:
            continue
        score = abs(tail.mean() - head.mean()) * np.sqrt(len(head) * len(tail) / n)
        if score > best:
            best, best_at = score, k - len(before)
    return best_at


def answer_quality(reference: Window, current: Window, recent: set[int], known: set[str]) -> AnswerQuality:
    """How often people changed the answers they checked, in the reference and in the recent photos
    (positions ``recent`` of ``current``); only answers the answering model could have got right."""

    def counts(window: Window, positions) -> tuple[int, int]:
        answerable = window.answerable or [None] * len(window)
        checked = changed = 0
        for i in positions:
            label, shown, can = window.people_label[i], window.shown_breed[i], answerable[i]
            if label is None:
                continue
            if can is None:
                can = label in known or label in SPECIAL_LABELS
            if can:
                checked += 1
                changed += shown != label
        return checked, changed

    checked, changed = counts(current, sorted(recent))
    checked_before, changed_before = counts(reference, range(len(reference)))
    p_value = None
    if checked >= MIN_CHECKED and checked_before >= MIN_CHECKED:
        table = [[changed, checked - changed], [changed_before, checked_before - changed_before]]
        p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    return AnswerQuality(checked, changed, checked_before, changed_before, p_value)


# --- stored incidents -----------------------------------------------------------------------------


def record_alarm(
    engine: Engine,
    *,
    report_id: int,
    now: datetime,
    model_version: str,
    facts: IncidentFacts,
    after_alarms: int = 1,
) -> tuple[DriftIncident | None, bool]:
    """A scheduled alarm: fold it into the open incident, or open one (True: admins are to be
    told) when it is the ``after_alarms``-th scheduled check in a row to alarm; else (None, False)."""
    with open_session(engine) as session:
        incident = repo.open_incident(session=session)
        if incident is not None:
            incident.alarms += 1
            incident.last_report_id = report_id
        elif _alarmed_in_a_row(report_id, session=session) < after_alarms:
            return None, False
        else:
            incident = DriftIncident(
                opened_at=now,
                report_id=report_id,
                last_report_id=report_id,
                alarms=after_alarms,
                kind=facts.kind,
                model_version=model_version,
                facts=facts.to_json(),
            )
        session.add(incident)
        session.commit()
        session.refresh(incident)
        return incident, incident.report_id == report_id


def _alarmed_in_a_row(report_id: int, *, session) -> int:
    """How many scheduled checks in a row alarmed, ending with report ``report_id``."""
    run = 0
    for report in repo.scheduled_drift_reports(session=session, up_to_id=report_id, limit=20):
        if not report.drift:
            break
        run += 1
    return run


def close_after_promotion(
    engine: Engine, *, version: str, now: datetime, photo_ids: Sequence[int]
) -> list[int]:
    """Close the open incident if ``version`` (just promoted) was trained on photos from after it
    opened (its dataset was folded then or later); ``photo_ids`` (the photos since the change) become
    the drift reference. Returns the ids closed."""
    with open_session(engine) as session:
        incident = repo.open_incident(session=session)
        model = repo.model_version(version, session=session)
        if incident is None or model is None or model.dataset_version is None:
            return []
        dataset = repo.dataset_version(model.dataset_version, session=session)
        if dataset is None or _utc(dataset.created_at) < _utc(incident.opened_at):
            return []
        incident.closed_at, incident.closed_how, incident.closed_by = now, IncidentClose.PROMOTED, version
        incident.new_normal = sorted(photo_ids)
        session.add(incident)
        session.commit()
        return [incident.id]


def accept_new_normal(
    engine: Engine, incident_id: int, *, actor: str | None, now: datetime, photo_ids: list[int]
) -> DriftIncident:
    """An admin's "Expected": close the incident and make ``photo_ids`` (the photos since the change)
    the drift reference. ``IncidentClosed`` if it was closed already; ``LookupError`` if there is none."""
    with open_session(engine) as session:
        incident = repo.incident(incident_id, session=session)
        if incident is None:
            raise LookupError(f"no drift incident #{incident_id}")
        if incident.closed_at is not None:
            raise IncidentClosed(f"drift incident #{incident_id} was closed already ({incident.closed_how})")
        incident.closed_at, incident.closed_how, incident.closed_by = now, IncidentClose.EXPECTED, actor
        incident.new_normal = sorted(photo_ids)
        session.add(incident)
        session.commit()
        session.refresh(incident)
        return incident


@dataclass(frozen=True)
class NewNormal:
    """The drift reference a closed incident left: its photos, and when it was set (drift then
    compares only photos received since)."""

    photo_ids: list[int]
    set_at: datetime


def new_normal(*, session) -> NewNormal | None:
    """The new normal of the last incident closed (by an admin's "Expected" or a promotion); None
    before any closed with one (the reference is then the champion's training photos)."""
    closed = repo.last_closed_incident(session=session)
    if closed is None or not closed.new_normal:
        return None
    return NewNormal(list(closed.new_normal), closed.closed_at)


def _utc(moment: datetime) -> datetime:
    """Naive UTC (SQLite returns naive datetimes, PostgreSQL aware ones)."""
    return (
        moment.replace(tzinfo=None)
        if moment.tzinfo is None
        else moment.replace(tzinfo=None) - moment.utcoffset()
    )
